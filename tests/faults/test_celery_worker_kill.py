"""The Celery worker killed while it sends the escalation e-mails: the e-mail it was sending goes when a worker
returns (late acknowledgement), none goes twice, and the chat never waited for any of it."""
import asyncio
import signal

from tests.faults.clients import Visitor, start_session
from tests.faults.conftest import budget
from tests.faults.servers import tail
from tests.faults.smtp import MailServer


async def _logged(process, text: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in process.log.read_text(errors="replace"):
        if loop.time() > deadline or not process.alive():
            raise AssertionError(f"{process.name} never logged {text!r}:\n{tail(process.log)}")
        await asyncio.sleep(0.3)


async def test_worker_killed_while_sending_sends_each_email_once_when_a_worker_returns(product, http):
    async with budget():
        # given a worker on the broker, and a mail server that takes the first e-mail and hangs on the second
        with MailServer(hang_on=2) as mail:
            app = product(CELERY_TASK_ALWAYS_EAGER="0", EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                          EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mail.port), REMINDER_DELAY_S="3600")
            daphne = await asyncio.to_thread(app.start_daphne)
            worker_env = {"DJANGO_SETTINGS_MODULE": "tests.faults.worker_settings"}
            worker = app.start_worker(**worker_env)
            visitor = Visitor(await start_session(http, daphne.base))
            await visitor.connect(daphne.ws)

            # when the visitor asks for a human and the worker is in the middle of the e-mails
            await visitor.walk_to_human()
            if not await asyncio.to_thread(mail.hanging.wait, 120):
                raise AssertionError(f"the worker never reached the second e-mail:\n{tail(worker.log)}")

            # then the chat did not wait for the mail server
            waiting = await visitor.send("Is anyone there?")
            await visitor.wait_acked([waiting])

            # when the worker is killed, and another one starts later
            worker.kill(signal.SIGKILL)
            assert await asyncio.to_thread(mail.dropped.wait, 30), "the hanging e-mail's connection stayed open"
            returned = app.start_worker(**worker_env)

            # then the task runs again there, to the end
            await _logged(returned, "succeeded", timeout=120)

        # and the e-mail that was being sent went, and no e-mail went twice
        assert len(set(mail.attempted)) >= 2
        delivered = mail.delivered_to()
        assert set(delivered) == set(mail.attempted), f"attempted {mail.attempted}, delivered {dict(delivered)}"
        assert max(delivered.values()) == 1, f"sent twice: {dict(delivered)}"
        await visitor.disconnect()
