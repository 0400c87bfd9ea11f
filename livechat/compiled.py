"""Queries compiled to SQL once and run many times.

Django builds a QuerySet's filters and compiles its SQL again on every evaluation. For the inbox list's page (a
dozen joined columns, two subqueries per row, the audience's filters) that was about half of a request's CPU
(py-spy: Query.add_q, resolve_expression, SQLCompiler.as_sql), and the same advisor asks for the same page shape
again and again. A CompiledRows holds the SQL, its parameters and what Django would do to each row read (the
fields' converters), and applies them as SQLCompiler.results_iter does. Django 5.2 selects the columns in the
order values_list names them, so the rows need no reordering.

Only for queries whose parameters are all fixed by the caller's cache key: nothing in the SQL may depend on the
time of the call or on rows read while building it.

A CompiledLookup is the same for a model query by one value (select_related and annotations included): the site
a widget names, a visitor's or an advisor's token, a conversation with its related rows, a conversation's row
lock. Under a crowd of arriving visitors, compiling the first three was a seventh of the process's time (py-spy,
--gil).
"""
import functools
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from django.db import DatabaseError, connections, router, transaction
from django.db.models import JSONField, Model, QuerySet, signals
from django.db.models.expressions import Col, RawSQL
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

from livechat.loop_statement import LoopStatement


def _portable(converters: dict, ops) -> list:
    """A backend's converters are methods of the connection's `ops`, and a connection belongs to one thread: kept by
    name, and taken from the connection of the thread that runs the query. A JSON column's is _json_column."""
    return [(position, [function.__name__ if getattr(function, "__self__", None) is ops else _faster(function)
                        for function in functions], expression)
            for position, (functions, expression) in converters.items()]


def _faster(function):
    field = getattr(function, "__self__", None)
    if isinstance(field, JSONField) and function.__func__ is JSONField.from_db_value and field.decoder is None:
        return functools.partial(_json_column, function)
    return function


_LONG_NUMBER = re.compile(r"\d{19}")


def _json_column(from_db_value, value, expression, connection):
    """JSONField.from_db_value with orjson: a 100-row inbox page decodes 500 JSON values (the visitor's variables,
    the last item's buttons and input, the labels). What orjson refuses (NaN, a key transform's value) or reads
    otherwise (it makes a float of an integer past 64 bits: any run of 19 digits) goes to the field's own converter,
    which decides as before."""
    if value is None:
        return None
    if isinstance(value, str) and isinstance(expression, Col) and not _LONG_NUMBER.search(value):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    return from_db_value(value, expression, connection)


def _converted(rows: list, converters: list, connection) -> list:
    if not converters:
        return rows
    bound = [(position, [getattr(connection.ops, function) if isinstance(function, str) else function
                         for function in functions], expression)
             for position, functions, expression in converters]
    converted = []
    for row in rows:
        row = list(row)
        for position, functions, expression in bound:
            value = row[position]
            for function in functions:
                value = function(value, expression, connection)
            row[position] = value
        converted.append(row)
    return converted


class CompiledRows:
    """`placeholders`: values the query was built with that each call replaces (`rows(*values)`), wherever they
    appear among its parameters (a page's cursor, in every site's part of the page). A placeholder must reach the
    parameters as it is: a backend that adapts it (SQLite writes datetimes as text) raises PlaceholderNotFound, and
    the caller keeps to the ORM.

    `binary`: the rows come in PostgreSQL's binary format (prepared_cursor), for columns of the types it reads as
    Django does (integers, booleans, text, JSON, timestamps); ignored elsewhere."""

    def __init__(self, queryset: QuerySet, *, placeholders: tuple = (), binary: bool = False) -> None:
        self.binary = binary
        query = queryset.query
        if not queryset._fields or queryset._iterable_class.__name__ != "ValuesListIterable":
            raise TypeError("CompiledRows takes a values_list() query (neither flat nor named)")
        self.alias = queryset.db
        compiler = query.get_compiler(using=self.alias)
        self.sql, params = compiler.as_sql()
        self.params = list(params)
        self.positions = []
        for placeholder in placeholders:
            found = [i for i, param in enumerate(self.params)
                     if type(param) is type(placeholder) and param == placeholder]
            if not found:
                raise PlaceholderNotFound(f"{placeholder!r} is none of the query's parameters")
            self.positions.append(found)
        fields = [select[0] for select in compiler.select[:compiler.col_count]]
        self.converters = _portable(compiler.get_converters(fields), compiler.connection.ops)

    def rows(self, *values: Any) -> list[tuple[Any, ...]]:
        if len(values) != len(self.positions):
            raise TypeError(f"{len(self.positions)} values expected, not {len(values)}")
        params = self.params
        if values:
            params = params.copy()
            for positions, value in zip(self.positions, values, strict=True):
                for position in positions:
                    params[position] = value
        connection = connections[self.alias]
        with prepared_cursor(connection, binary=self.binary) as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        return [tuple(row) for row in _converted(rows, self.converters, connection)]


class PlaceholderNotFound(ValueError):
    pass


def prepared_cursor(connection, *, binary: bool = False):
    """A cursor that binds its parameters on the server, so that PostgreSQL plans a statement a connection runs
    often once (livechat/postgresql: the backend's `prepared_cursor`, and its `binary` rows), else the connection's
    own cursor. For SQL that types every parameter it compares or stores (a cast where PostgreSQL could not tell)."""
    make = getattr(connection, "prepared_cursor", None)
    return make(binary=binary) if make is not None else connection.cursor()


# Placeholders no real value equals: a text no key or hash holds, and an id no row has.
TEXT_PLACEHOLDER = "\x01compiled-lookup"
ID_PLACEHOLDER = -1


class CompiledLookup:
    """`make(value)` -> a QuerySet of at most one row whose SQL takes `value` as one of its parameters; compiled on
    first use with `placeholder` (a value nothing else in the query may equal), then run with the caller's value.
    Returns the model instance, its select_related rows and annotations attached, as the ORM would; None when
    there is no row.

    Only for a value used exactly once, as is (a key, a hash, a primary key), and nothing else that changes
    between calls: filters on the time or on the caller belong in Python after the lookup.

    `placeholder` may be a tuple: `make(*values)` then takes several values, each its own placeholder, and `all`
    returns every row in the query's order (for a page: its size is part of the SQL, one CompiledLookup per size)."""

    def __init__(self, make: Callable[..., QuerySet], placeholder: Any) -> None:
        self._make = make
        self._placeholders = placeholder if isinstance(placeholder, tuple) else (placeholder,)
        self._compiled: tuple | None = None
        self._for_update = False
        self._lock = threading.Lock()
        self._loop_statement: LoopStatement | None = None

    def _compile(self) -> tuple:
        queryset = self._make(*self._placeholders)
        alias = queryset.db
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        positions = []
        for placeholder in self._placeholders:
            found = [i for i, param in enumerate(params) if param == placeholder]
            if len(found) != 1:
                raise ValueError(f"the placeholder is {len(found)} of the query's parameters, not one")
            positions.append(found[0])
        select, klass_info = compiler.select, compiler.klass_info
        if queryset._known_related_objects or queryset._prefetch_related_lookups:
            raise TypeError("CompiledLookup takes model queries with select_related and annotations at most")
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        converters = _portable(compiler.get_converters([column[0] for column in select[:compiler.col_count]]),
                               compiler.connection.ops)
        self._for_update = bool(queryset.query.select_for_update)
        return (alias, sql, list(params), positions, klass_info["model"], start, end, init_list,
                get_related_populators(klass_info, select, alias), converters, dict(compiler.annotation_col_map))

    def _rows(self, values: tuple, *, at_most: int | None) -> tuple[list, tuple]:
        if len(values) != len(self._placeholders):
            raise TypeError(f"{len(self._placeholders)} values expected, not {len(values)}")
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = self._compile()
        compiled = self._compiled
        alias, sql = compiled[:2]
        params = self._params(values, compiled)
        connection = connections[alias]
        if self._for_update and connection.get_autocommit():  # as Django refuses it: the lock would end at once
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with prepared_cursor(connection) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if at_most is None else cursor.fetchmany(at_most)
        return _converted(rows, compiled[9], connection), compiled

    @staticmethod
    def _instance(row, compiled: tuple) -> Model:
        alias, _sql, _params, _positions, model, start, end, init_list, populators, _converters, annotations = \
            compiled
        instance = model.from_db(alias, init_list, row[start:end])
        for populator in populators:
            populator.populate(row, instance)
        for name, column in annotations.items():
            setattr(instance, name, row[column])
        return instance

    @staticmethod
    def _params(values: tuple, compiled: tuple) -> list:
        """The query's parameters with the caller's values in the placeholders' places."""
        params = compiled[2].copy()
        for position, value in zip(compiled[3], values, strict=True):
            params[position] = value
        return params

    @classmethod
    def _one(cls, rows: list, compiled: tuple, values: tuple) -> Model | None:
        if not rows:
            return None
        if len(rows) > 1:
            raise compiled[4].MultipleObjectsReturned(f"more than one {compiled[4].__name__} for {values!r}")
        return cls._instance(rows[0], compiled)

    def get(self, *values: Any) -> Model | None:
        rows, compiled = self._rows(values, at_most=2)
        return self._one(rows, compiled, values)

    def all(self, *values: Any) -> list[Model]:
        rows, compiled = self._rows(values, at_most=None)
        return [self._instance(row, compiled) for row in rows]

    async def get_on_loop(self, loop_connection, *values: Any) -> Model | None:
        """`get` on one of the event loop's own connections (livechat.loop_io), its rows in the binary format
        (livechat.loop_statement), read as the thread's are. Raises NotCompiled until a thread has compiled the
        query (compiling may ask the database its version: never on the loop)."""
        compiled = self._compiled
        if compiled is None:
            raise NotCompiled("compiled in a thread first")
        if self._for_update:
            raise TypeError("a row lock is a transaction's: not on the loop, which commits statement by statement")
        if len(values) != len(self._placeholders):
            raise TypeError(f"{len(self._placeholders)} values expected, not {len(values)}")
        statement = self._loop_statement
        if statement is None:
            statement = self._loop_statement = LoopStatement(compiled[1], positional=True)
        rows = await statement.rows(loop_connection, self._params(values, compiled), at_most=2)
        return self._one(_converted(rows, compiled[9], _converting_connection(compiled[0])), compiled, values)


class NotCompiled(LookupError):
    pass


@functools.cache
def _converting_connection(alias: str):
    """A database wrapper for the converters of rows read on the loop: they read its operations and settings, never
    its connection. `connections[alias]` on the loop would build a wrapper for every request's context."""
    return connections.create_connection(alias)


# ------------------------------------------------------------------------------ writes
#
# A save through the ORM builds its INSERT or UPDATE again each time (InsertQuery, UpdateQuery and their compilers):
# on a slow 2-core machine, 0.7 ms of CPU for a message's INSERT against 0.5 ms for the same statement written once,
# and a new visitor's arrival (session, greeting, four steps of the bot's walk, the escalation) saves rows a dozen
# times. insert() and save_fields() write the same statements as Model.save() for models that have no save
# signals (with a receiver, they call Model.save() itself).


def _quiet(model: type[Model]) -> bool:
    return not (signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model))


@functools.lru_cache(maxsize=None)
def _insert_sql(model: type[Model], alias: str) -> tuple[str, tuple, bool]:
    """The INSERT of every concrete column but an auto primary key, its new key returned where the backend can."""
    connection = connections[alias]
    meta = model._meta
    fields = tuple(field for field in meta.local_concrete_fields if field is not meta.auto_field)
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    returning = meta.auto_field is not None and connection.features.can_return_columns_from_insert
    if returning:
        returning_sql, _ = connection.ops.return_insert_columns([meta.auto_field])
        sql = f"{sql} {returning_sql}"
    return sql, fields, returning


def insert(instance: Model) -> None:
    """instance.save(force_insert=True) for a new row of a model without multi-table inheritance: the values as
    Model.save() writes them (pre_save: auto_now_add and the files; get_db_prep_save), its primary key set."""
    model = type(instance)
    alias = router.db_for_write(model, instance=instance)
    if not _quiet(model) or model._meta.parents:
        instance.save(force_insert=True, using=alias)
        return
    instance._prepare_related_fields_for_save(operation_name="save")
    connection = connections[alias]
    sql, fields, returning = _insert_sql(model, alias)
    values = [field.pre_save(instance, True) for field in fields]
    if any(hasattr(value, "resolve_expression") for value in values):  # a database default or an expression
        instance.save(force_insert=True, using=alias)
        return
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fields, values, strict=True)]
    meta = model._meta
    with transaction.mark_for_rollback_on_error(alias), prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        if meta.auto_field is not None:
            key = (cursor.fetchone()[0] if returning
                   else connection.ops.last_insert_id(cursor, meta.db_table, meta.auto_field.column))
            setattr(instance, meta.auto_field.attname, key)
    instance._state.adding = False
    instance._state.db = alias


@functools.lru_cache(maxsize=None)
def _columns(model: type[Model], names: tuple[str, ...], alias: str) -> tuple[str, tuple, str]:
    connection = connections[alias]
    meta = model._meta
    quote = connection.ops.quote_name
    fields = tuple(meta.get_field(name) for name in names)
    if any(not field.concrete or field.primary_key for field in fields):
        raise ValueError(f"save_fields writes concrete columns only, not {names}")
    return quote(meta.db_table), tuple((field, quote(field.column)) for field in fields), quote(meta.pk.column)


def save_fields(instance: Model, names: Iterable[str], *, read_back: str | None = None) -> None:
    """instance.save(update_fields=names): the same UPDATE, by primary key, refused (DatabaseError) if the row is
    gone. A value may be a RawSQL expression (a sequence's next number), left on the instance as Model.save() leaves
    it, unless it is `read_back`: an integer column the same statement returns and sets on the instance, where the
    backend returns columns from a write (PostgreSQL, SQLite 3.35+); elsewhere it is deferred, read on first use."""
    model = type(instance)
    names = tuple(names)
    if not names:
        return
    alias = instance._state.db or router.db_for_write(model, instance=instance)
    if not _quiet(model) or model._meta.parents:
        instance.save(update_fields=names, using=alias)
        return
    connection = connections[alias]
    table, columns, key = _columns(model, names, alias)
    assignments, params = [], []
    for field, column in columns:
        value = field.pre_save(instance, False)
        if isinstance(value, RawSQL):
            assignments.append(f"{column} = ({value.sql})")
            params.extend(value.params)
        elif hasattr(value, "resolve_expression"):  # F(), a function: Django's compiler knows how
            instance.save(update_fields=names, using=alias)
            return
        else:
            assignments.append(f"{column} = %s")
            params.append(field.get_db_prep_save(value, connection))
    params.append(instance.pk)
    sql = f"UPDATE {table} SET {', '.join(assignments)} WHERE {key} = %s"
    returning = read_back is not None and connection.features.can_return_columns_from_insert
    if returning:
        sql += f" RETURNING {connection.ops.quote_name(model._meta.get_field(read_back).column)}"
    with transaction.mark_for_rollback_on_error(alias), prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone() if returning else None
        if cursor.rowcount == 0 or (returning and row is None):
            raise DatabaseError("Save with update_fields did not affect any rows.")
    if returning:
        instance.__dict__[read_back] = int(row[0])
    elif read_back is not None:
        instance.__dict__.pop(read_back, None)  # deferred: loads on first access
