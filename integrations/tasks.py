"""Celery tasks of the integrations app: thin, they call integrations.services."""
from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def webhook_deliver(webhook_id: int, conversation_id: int | None) -> int:
    """Send the due deliveries of one webhook's chain for one conversation (see services.webhook_chain_deliver)."""
    from integrations.services import webhook_chain_deliver

    return webhook_chain_deliver(webhook_id=webhook_id, conversation_id=conversation_id)


@shared_task(ignore_result=True)
def webhooks_sweep() -> int:
    """Every 30 s (Celery beat): queue the chains whose next attempt is due."""
    from integrations.services import webhooks_sweep as sweep

    return sweep()


@shared_task(acks_late=True, ignore_result=True)
def retention_run() -> int:
    """Nightly (Celery beat): erase the closed conversations older than each account's retention_days, and forget
    old webhook deliveries."""
    from integrations.services import retention_erase, webhook_log_prune

    erased = retention_erase()
    webhook_log_prune()
    return erased
