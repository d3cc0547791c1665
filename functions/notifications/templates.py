"""The emails kshop sends, each as a subject, a text part and an HTML part.

Placeholders are `$name` (string.Template). Every value is HTML-escaped in the
HTML part, and the subject is folded onto one line, so no input can add markup
or a mail header.

    welcome          name
    order_completed  order_id, total (formatted, e.g. "€12.50")
    order_cancelled  order_id, reason
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


_LAYOUT = Template("""\
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>$subject</title></head>
<body style="font-family: sans-serif; line-height: 1.5; max-width: 36em">
$body
<p style="color: #666">The kshop team</p>
</body>
</html>
""")

_FOOTER = "\n\nThe kshop team\n"

TEMPLATES: dict[str, Email] = {
    "welcome": Email(
        subject="Welcome to kshop, $name",
        text="Hello $name,\n\nwelcome to kshop. Your account is ready.",
        html="<p>Hello $name,</p>\n<p>welcome to kshop. Your account is ready.</p>",
    ),
    "order_completed": Email(
        subject="Your kshop order $order_id is on its way",
        text="Hello,\n\nwe have your payment of $total, and order $order_id has shipped.",
        html="<p>Hello,</p>\n<p>we have your payment of $total, "
        "and order <strong>$order_id</strong> has shipped.</p>",
    ),
    "order_cancelled": Email(
        subject="Your kshop order $order_id was cancelled",
        text="Hello,\n\norder $order_id was cancelled: $reason.\n"
        "Anything you were charged for it is refunded.",
        html="<p>Hello,</p>\n<p>order <strong>$order_id</strong> was cancelled: $reason.</p>\n"
        "<p>Anything you were charged for it is refunded.</p>",
    ),
}


def fields(template: str) -> frozenset[str]:
    """The context keys a template needs."""
    parts = TEMPLATES[template]
    return frozenset(
        name
        for part in (parts.subject, parts.text, parts.html)
        for name in Template(part).get_identifiers()
    )


def render(template: str, context: Mapping[str, object]) -> Email:
    """The email for a template and its values; ValueError when either is wrong."""
    if template not in TEMPLATES:
        raise ValueError(f"no email template {template!r}")
    missing = fields(template) - context.keys()
    if missing:
        raise ValueError(f"{template}: missing {', '.join(sorted(missing))}")
    parts = TEMPLATES[template]
    plain = {key: str(value) for key, value in context.items()}
    escaped = {key: html.escape(value) for key, value in plain.items()}
    subject = " ".join(Template(parts.subject).substitute(plain).split())
    return Email(
        subject=subject,
        text=Template(parts.text).substitute(plain) + _FOOTER,
        html=_LAYOUT.substitute(
            subject=html.escape(subject), body=Template(parts.html).substitute(escaped)
        ),
    )
