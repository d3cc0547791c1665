"""Send a templated email over SMTP, once per key.

    sent = await send("order_completed", "ada@example.com",
                      {"order_id": order_id, "total": "€12.50"}, key=order_id)

Once-only, and what it cannot promise. The runtime already answers a
redelivered event from its idempotency record. On top of that, `send` keeps a
Redis mark per (template, key) for 30 days: "sending" while the SMTP exchange
runs, "sent" after the server accepted the message. So a second event about the
same thing (another id, a replay from the dead-letter store days later) sends
nothing, and two at once get 429 until the first is done.

SMTP cannot take part in a transaction, so one window is left: the process dies
after the server accepted the message and before the mark says "sent". The
"sending" mark then expires (IDEMPOTENCY_LOCK_TTL), the broker's retry sends
again, and the recipient may get a second copy. That copy has the same
Message-ID, derived from the key, so mail stores that deduplicate by
Message-ID show it once. Exactly once is out of reach; at least once, with a
duplicate only after such a crash, is what this gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel

from functions.notifications.templates import render
from functions.runtime import BadRequest, TooManyRequests, Unavailable
from functions.runtime.settings import settings
from functions.runtime.state import State

RETENTION = timedelta(days=30)


class Mark(BaseModel):
    status: Literal["sending", "sent"]


marks = State(Mark, "notifications", "mail", ttl=RETENTION.total_seconds())


def message(template: str, to: str, context: Mapping[str, object], key: str) -> EmailMessage:
    """The message to send; BadRequest (not retried) when the template or address is wrong."""
    try:
        email = render(template, context)
        recipient = validate_email(to, check_deliverability=False).normalized
    except (ValueError, EmailNotValidError) as exc:
        raise BadRequest("Cannot build the email", [str(exc)]) from None
    sender = settings().smtp_from
    domain = parseaddr(sender)[1].rpartition("@")[2] or "kshop.localhost"
    digest = hashlib.sha256(f"{template}:{key}".encode()).hexdigest()[:32]
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = recipient
    mail["Subject"] = email.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{digest}@{domain}>"
    mail.set_content(email.text)
    mail.add_alternative(email.html, subtype="html")
    return mail


async def send(template: str, to: str, context: Mapping[str, object], *, key: str) -> bool:
    """Send the email unless it was sent for this key; True when this call sent it.

    BadRequest for a bad template, context or address; Unavailable when the SMTP
    server fails or times out; TooManyRequests while another call sends it.
    """
    mail = message(template, to, context, key)
    name = f"{template}:{key}"
    if not await marks.add(name, Mark(status="sending"), ttl=settings().idempotency_lock_ttl):
        current = await marks.get(name)
        if current is not None and current.status == "sent":
            return False
        raise TooManyRequests("The same email is being sent")
    try:
        await _deliver(mail)
    except BaseException:
        await marks.delete(name)
        raise
    await marks.set(name, Mark(status="sent"))
    return True


async def _deliver(mail: EmailMessage) -> None:
    import aiosmtplib

    config = settings()
    try:
        await aiosmtplib.send(
            mail,
            hostname=config.smtp_host,
            port=config.smtp_port,
            username=config.smtp_username,
            password=config.smtp_password,
            use_tls=config.smtp_tls == "tls",
            start_tls=config.smtp_tls == "starttls",
            timeout=config.smtp_timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        if all(r.code >= 500 for r in exc.recipients):
            # The server says the address will never work: retrying cannot help.
            refused = [str(r) for r in exc.recipients]
            raise BadRequest("The recipient was refused", refused) from None
        raise Unavailable(f"SMTP refused the recipient for now: {exc}") from None
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        raise Unavailable(f"SMTP failed: {type(exc).__name__}: {exc}") from None
