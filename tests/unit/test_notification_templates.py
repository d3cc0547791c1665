"""The email templates: escaping, one-line subjects, and the values each one needs."""

import pytest

from functions.notifications.templates import TEMPLATES, fields, render


def test_every_template_has_what_it_needs_listed() -> None:
    assert fields("welcome") == {"name"}
    assert fields("order_completed") == {"order_id", "total"}
    assert fields("order_cancelled") == {"order_id", "reason"}
    assert set(TEMPLATES) == {"welcome", "order_completed", "order_cancelled"}


def test_values_are_escaped_in_html_and_kept_in_text() -> None:
    email = render("welcome", {"name": "<img src=x onerror=alert(1)> & 'Bob'"})
    assert "<img" not in email.html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &#x27;Bob&#x27;" in email.html
    assert "<img src=x onerror=alert(1)> & 'Bob'" in email.text
    assert "<title>Welcome to kshop, &lt;img" in email.html


def test_a_subject_stays_on_one_line_whatever_the_input() -> None:
    email = render("welcome", {"name": "Ada\r\nBcc: everyone@example.com"})
    assert email.subject == "Welcome to kshop, Ada Bcc: everyone@example.com"
    assert "\n" not in email.subject and "\r" not in email.subject


def test_a_dollar_in_a_value_is_text_not_a_placeholder() -> None:
    assert "$name" in render("welcome", {"name": "$name"}).text


def test_order_emails_render() -> None:
    done = render("order_completed", {"order_id": "ord_1", "total": "€12.50"})
    assert done.subject == "Your kshop order ord_1 is on its way"
    assert "€12.50" in done.text and "<strong>ord_1</strong>" in done.html
    gone = render("order_cancelled", {"order_id": "ord_2", "reason": "out of stock"})
    assert "cancelled: out of stock." in gone.text


def test_a_missing_value_or_template_is_an_error() -> None:
    with pytest.raises(ValueError, match="missing total"):
        render("order_completed", {"order_id": "ord_1"})
    with pytest.raises(ValueError, match="no email template"):
        render("password_reset", {})


def test_extra_values_are_ignored() -> None:
    assert render("welcome", {"name": "Ada", "userId": "u1"}).subject == "Welcome to kshop, Ada"
