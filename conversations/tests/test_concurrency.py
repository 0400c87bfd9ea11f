"""Many concurrent senders on one conversation keep `seq` gapless and unique (real connections, PostgreSQL)."""
import threading

import pytest
from django.db import connection, connections

from conversations import services
from conversations.models import Message, Visitor
from conversations.tests.conftest import start_session


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_keep_seq_gapless_and_unique(demo):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are what this checks; SQLite serializes every write anyway (CI runs PostgreSQL)")
    body = start_session()
    visitor = Visitor.objects.get(pk=body["visitor"]["id"])
    conversation_id = body["conversation"]["id"]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def visitor_sends(n):
        try:
            barrier.wait()
            for i in range(10):
                services.visitor_message_send(visitor=visitor, client_id=f"v{n}-{i}", text=f"{n}/{i}")
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    def advisor_sends(n):
        try:
            barrier.wait()
            for i in range(10):
                services.advisor_message_send(conversation_id=conversation_id, advisor=demo.advisors["alice"],
                                              client_id=f"a{n}-{i}", text="note", note=bool(i % 2))
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=visitor_sends, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=advisor_sends, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    seqs = list(Message.objects.filter(conversation_id=conversation_id).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert Message.objects.filter(conversation_id=conversation_id, client_id__isnull=False).count() == 80
    conversation = visitor.conversation
    conversation.refresh_from_db()
    assert conversation.last_seq == seqs[-1]
    # a repeat of every client_id stores nothing more
    for n in range(4):
        services.visitor_message_send(visitor=visitor, client_id=f"v{n}-0", text="again")
    assert Message.objects.filter(conversation_id=conversation_id).count() == len(seqs)
