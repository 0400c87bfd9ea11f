"""The audit trail's one writer: who did what, when. Called inside the transaction of the change it records, so a
change that rolls back leaves no entry and a committed one always has its entry."""
from typing import Any

from integrations.models import AuditEntry

Action = AuditEntry.Action


def audit_record(*, action: str, target: str, actor=None, actor_name: str = "", details: dict[str, Any] | None = None
                 ) -> AuditEntry:
    """`actor`: the user who did it, or None for a process, named by `actor_name` (e.g. "manage.py", "retention")."""
    if actor is not None and not actor_name:
        actor_name = actor.get_username()
    return AuditEntry.objects.create(action=action, target=target[:200], actor=actor,
                                     actor_name=(actor_name or "system")[:150], details=details or {})
