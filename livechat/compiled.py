"""A `values_list` query compiled to SQL once and run many times.

Django builds a QuerySet's filters and compiles its SQL again on every evaluation. For the inbox list's page (a
dozen joined columns, two subqueries per row, the audience's filters) that was about half of a request's CPU
(py-spy: Query.add_q, resolve_expression, SQLCompiler.as_sql), and the same advisor asks for the same page shape
again and again. A CompiledRows holds the SQL, its parameters and what Django would do to each row read (the
fields' converters), and applies them as SQLCompiler.results_iter does. Django 5.2 selects the columns in the
order values_list names them, so the rows need no reordering.

Only for queries whose parameters are all fixed by the caller's cache key: nothing in the SQL may depend on the
time of the call or on rows read while building it.
"""
from typing import Any

from django.db import connections
from django.db.models import QuerySet


class CompiledRows:
    def __init__(self, queryset: QuerySet) -> None:
        query = queryset.query
        if not queryset._fields or queryset._iterable_class.__name__ != "ValuesListIterable":
            raise TypeError("CompiledRows takes a values_list() query (neither flat nor named)")
        self.alias = queryset.db
        compiler = query.get_compiler(using=self.alias)
        self.sql, self.params = compiler.as_sql()
        fields = [select[0] for select in compiler.select[:compiler.col_count]]
        # A backend's converters are methods of the connection's `ops`, and a connection belongs to one thread:
        # kept by name, and taken from the connection of the thread that runs the query.
        ops = compiler.connection.ops
        self.converters = [(position, [function.__name__ if getattr(function, "__self__", None) is ops else function
                                       for function in functions], expression)
                           for position, (functions, expression) in compiler.get_converters(fields).items()]

    def rows(self) -> list[tuple[Any, ...]]:
        connection = connections[self.alias]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.params)
            rows = cursor.fetchall()
        if self.converters:
            converters = [(position, [getattr(connection.ops, function) if isinstance(function, str) else function
                                      for function in functions], expression)
                          for position, functions, expression in self.converters]
            converted = []
            for row in rows:
                row = list(row)
                for position, functions, expression in converters:
                    value = row[position]
                    for function in functions:
                        value = function(value, expression, connection)
                    row[position] = value
                converted.append(row)
            rows = converted
        return [tuple(row) for row in rows]
