"""Django's PostgreSQL backend, its pool checking connections as livechat/pool.py decides.

Django builds the pool itself and passes it psycopg_pool's check (CONN_HEALTH_CHECKS) or none, so the check cannot
come through the pool's OPTIONS; it is set here, before the pool opens (Django opens it on the first connection).
"""
from django.db.backends.postgresql import base

from livechat.pool import check_unless_recently_used


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        if pool is not None:
            pool._check = check_unless_recently_used
        return pool
