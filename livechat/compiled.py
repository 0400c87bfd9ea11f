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
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError


def _portable(converters: dict, ops) -> list:
    """A backend's converters are methods of the connection's `ops`, and a connection belongs to one thread: kept by
    name, and taken from the connection of the thread that runs the query."""
    return [(position, [function.__name__ if getattr(function, "__self__", None) is ops else function
                        for function in functions], expression)
            for position, (functions, expression) in converters.items()]


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
    def __init__(self, queryset: QuerySet) -> None:
        query = queryset.query
        if not queryset._fields or queryset._iterable_class.__name__ != "ValuesListIterable":
            raise TypeError("CompiledRows takes a values_list() query (neither flat nor named)")
        self.alias = queryset.db
        compiler = query.get_compiler(using=self.alias)
        self.sql, self.params = compiler.as_sql()
        fields = [select[0] for select in compiler.select[:compiler.col_count]]
        self.converters = _portable(compiler.get_converters(fields), compiler.connection.ops)

    def rows(self) -> list[tuple[Any, ...]]:
        connection = connections[self.alias]
        with prepared_cursor(connection) as cursor:
            cursor.execute(self.sql, self.params)
            rows = cursor.fetchall()
        return [tuple(row) for row in _converted(rows, self.converters, connection)]


def prepared_cursor(connection):
    """A cursor that binds its parameters on the server, so that PostgreSQL plans a statement a connection runs
    often once (livechat/postgresql: the backend's `prepared_cursor`), else the connection's own cursor. For SQL
    that types every parameter it compares or stores (a cast where PostgreSQL could not tell)."""
    make = getattr(connection, "prepared_cursor", None)
    return make() if make is not None else connection.cursor()


# Placeholders no real value equals: a text no key or hash holds, and an id no row has.
TEXT_PLACEHOLDER = "\x01compiled-lookup"
ID_PLACEHOLDER = -1


class CompiledLookup:
    """`make(value)` -> a QuerySet of at most one row whose SQL takes `value` as one of its parameters; compiled on
    first use with `placeholder` (a value nothing else in the query may equal), then run with the caller's value.
    Returns the model instance, its select_related rows and annotations attached, as the ORM would; None when
    there is no row.

    Only for a value used exactly once, as is (a key, a hash, a primary key), and nothing else that changes
    between calls: filters on the time or on the caller belong in Python after the lookup."""

    def __init__(self, make: Callable[[Any], QuerySet], placeholder: Any) -> None:
        self._make = make
        self._placeholder = placeholder
        self._compiled: tuple | None = None
        self._for_update = False
        self._lock = threading.Lock()

    def _compile(self) -> tuple:
        queryset = self._make(self._placeholder)
        alias = queryset.db
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        positions = [i for i, param in enumerate(params) if param == self._placeholder]
        if len(positions) != 1:
            raise ValueError(f"the placeholder is {len(positions)} of the query's parameters, not one")
        select, klass_info = compiler.select, compiler.klass_info
        if queryset._known_related_objects or queryset._prefetch_related_lookups:
            raise TypeError("CompiledLookup takes model queries with select_related and annotations at most")
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        converters = _portable(compiler.get_converters([column[0] for column in select[:compiler.col_count]]),
                               compiler.connection.ops)
        self._for_update = bool(queryset.query.select_for_update)
        return (alias, sql, list(params), positions[0], klass_info["model"], start, end, init_list,
                get_related_populators(klass_info, select, alias), converters, dict(compiler.annotation_col_map))

    def get(self, value: Any) -> Model | None:
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = self._compile()
        alias, sql, params, position, model, start, end, init_list, populators, converters, annotations = \
            self._compiled
        params = params.copy()
        params[position] = value
        connection = connections[alias]
        if self._for_update and connection.get_autocommit():  # as Django refuses it: the lock would end at once
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with prepared_cursor(connection) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchmany(2)
        if not rows:
            return None
        if len(rows) > 1:
            raise model.MultipleObjectsReturned(f"more than one {model.__name__} for {value!r}")
        row = _converted(rows, converters, connection)[0]
        instance = model.from_db(alias, init_list, row[start:end])
        for populator in populators:
            populator.populate(row, instance)
        for name, column in annotations.items():
            setattr(instance, name, row[column])
        return instance
