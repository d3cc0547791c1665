"""CloudEvents in and out: strict where Knative's broker is strict."""

import json

import pytest

from functions.runtime import codec
from functions.runtime.errors import BadRequest

BINARY = {
    "ce-specversion": "1.0",
    "ce-id": "e-1",
    "ce-source": "/tests",
    "ce-type": "kshop.sample.pinged",
    "content-type": "application/json",
}


def structured(**attributes: object) -> bytes:
    base = {"specversion": "1.0", "id": "e-1", "source": "/tests", "type": "kshop.sample.pinged"}
    return json.dumps({**base, **attributes}).encode()


def rejection(headers: dict[str, str], body: bytes) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        codec.decode(headers, body)
    return caught.value


def test_binary_mode_reads_attributes_from_headers_and_data_from_body() -> None:
    event = codec.decode(BINARY | {"ce-traceparent": "00-ab-cd-01"}, b'{"message": "hi"}')
    assert (event.get_id(), event.get_source(), event.get_type()) == (
        "e-1",
        "/tests",
        "kshop.sample.pinged",
    )
    assert event.get_data() == {"message": "hi"}
    assert event.get_extension("traceparent") == "00-ab-cd-01"


def test_structured_mode_ignores_media_type_parameters() -> None:
    headers = {"content-type": "application/cloudevents+json; charset=utf-8"}
    event = codec.decode(headers, structured(data={"message": "hi"}, subject="o-1"))
    assert event.get_data() == {"message": "hi"}
    assert event.get_subject() == "o-1"


def test_an_event_without_time_does_not_gain_one() -> None:
    assert "time" not in codec.decode(BINARY, b"{}").get_attributes()


@pytest.mark.parametrize("missing", ["ce-id", "ce-source", "ce-type"])
def test_binary_mode_names_a_missing_required_attribute(missing: str) -> None:
    headers = {k: v for k, v in BINARY.items() if k != missing}
    error = rejection(headers, b"{}")
    assert error.message == "Invalid CloudEvent"
    assert error.details == [{"attribute": missing.removeprefix("ce-"), "message": "is required"}]


@pytest.mark.parametrize("missing", ["id", "source", "type", "specversion"])
def test_structured_mode_names_a_missing_required_attribute(missing: str) -> None:
    document = json.loads(structured())
    del document[missing]
    error = rejection({"content-type": codec.STRUCTURED}, json.dumps(document).encode())
    assert {"attribute": missing, "message": "is required"} in error.details


def test_an_empty_id_is_invalid() -> None:
    error = rejection(BINARY | {"ce-id": ""}, b"{}")
    assert error.details[0]["attribute"] == "id"


def test_an_unknown_specversion_is_refused() -> None:
    error = rejection(BINARY | {"ce-specversion": "2.0"}, b"{}")
    message = "must be one of ['1.0', '0.3']"
    assert error.details == [{"attribute": "specversion", "message": message}]


def test_a_spec_0_3_event_in_binary_mode_is_read_and_written_back_as_0_3() -> None:
    headers = BINARY | {"ce-specversion": "0.3", "ce-schemaurl": "https://kshop.example/s.json"}
    event = codec.decode(headers, b'{"n": 1}')
    assert event.get_specversion() == "0.3"
    assert event.get_data() == {"n": 1}
    assert event.get_attributes()["schemaurl"] == headers["ce-schemaurl"]
    written, body = codec.encode(event)
    assert (written["ce-specversion"], written["ce-schemaurl"]) == ("0.3", headers["ce-schemaurl"])
    assert json.loads(body) == {"n": 1}


def test_a_spec_0_3_structured_event_with_base64_data_is_decoded() -> None:
    document = json.loads(structured(specversion="0.3", datacontentencoding="base64"))
    document |= {"datacontenttype": "application/octet-stream", "data": "AAEC"}
    event = codec.decode({"content-type": codec.STRUCTURED}, json.dumps(document).encode())
    assert (event.get_specversion(), event.get_data()) == ("0.3", b"\x00\x01\x02")
    _, body = codec.encode(event, structured=True)
    assert json.loads(body)["datacontentencoding"] == "base64"


def test_a_spec_0_3_schemaurl_must_be_a_string() -> None:
    body = structured(specversion="0.3", schemaurl=7)
    error = rejection({"content-type": codec.STRUCTURED}, body)
    assert error.details == [{"attribute": "schemaurl", "message": "must be a string"}]


def test_batch_mode_is_refused_as_knative_does() -> None:
    error = rejection({"content-type": codec.BATCH}, b"[" + structured() + b"]")
    assert "Batch mode" in error.message


def test_a_plain_request_is_not_a_cloudevent() -> None:
    assert rejection({"content-type": "application/json"}, b"{}").message.startswith(
        "Not a CloudEvent"
    )


def test_a_structured_event_that_is_not_json_is_a_bad_request() -> None:
    assert rejection({"content-type": codec.STRUCTURED}, b"{not json").message == "Invalid JSON"


@pytest.mark.parametrize(
    "headers",
    [
        BINARY,
        {k: v for k, v in BINARY.items() if k != "content-type"},
        BINARY | {"content-type": "text/plain"},
    ],
    ids=["json", "no-type", "text"],
)
@pytest.mark.parametrize("body", [b'{"message": ', b"not json", b"\xff\xfe"])
def test_a_binary_body_that_is_not_what_its_type_says_is_kept_as_its_bytes(
    headers: dict[str, str], body: bytes
) -> None:
    # Still a CloudEvent, as Knative sees it: the handlers that need JSON refuse it
    # (400, from their model), the dead-letter sink keeps it byte for byte.
    event = codec.decode(headers, body)
    if headers.get("content-type") == "text/plain" and body != b"\xff\xfe":
        assert event.get_data() == body.decode()
    else:
        assert event.get_data() == body
    assert codec.encode(event)[1] == body


def test_a_json_string_in_binary_mode_is_data_not_bytes() -> None:
    assert codec.decode(BINARY, b'"hello"').get_data() == "hello"


def test_a_structured_body_must_be_an_object() -> None:
    assert "JSON object" in rejection({"content-type": codec.STRUCTURED}, b"[1, 2]").message


@pytest.mark.parametrize("value", [17, "yesterday"])
def test_a_bad_time_is_refused(value: object) -> None:
    rejection({"content-type": codec.STRUCTURED}, structured(time=value))


def test_an_extension_with_an_invalid_name_is_refused() -> None:
    error = rejection(BINARY | {"ce-Bad_Name": "x"}, b"{}")
    assert error.details[0]["attribute"] == "bad_name"


@pytest.mark.parametrize("as_structured", [False, True])
def test_encode_then_decode_gives_the_same_event(as_structured: bool) -> None:
    original = codec.decode(BINARY | {"ce-subject": "s 1/ü"}, b'{"n": 1}')
    headers, body = codec.encode(original, structured=as_structured)
    again = codec.decode({k.lower(): v for k, v in headers.items()}, body)
    assert again.get_attributes() == original.get_attributes()
    assert again.get_data() == {"n": 1}
    assert codec.is_structured({k.lower(): v for k, v in headers.items()}) is as_structured


@pytest.mark.parametrize("data", [["a", 1], "text", True, 3])
def test_json_data_that_is_not_an_object_stays_json_in_binary_mode(data: object) -> None:
    event = codec.make(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
        | {"datacontenttype": "application/json"},
        data,
    )
    headers, body = codec.encode(event)
    assert json.loads(body) == data
    assert codec.decode({k.lower(): v for k, v in headers.items()}, body).get_data() == data


def test_binary_data_passes_byte_for_byte() -> None:
    attributes = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    event = codec.make(attributes | {"datacontenttype": "application/octet-stream"}, b"\x00\xff")
    assert codec.encode(event)[1] == b"\x00\xff"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (BINARY, b'{"name": "\\ud800"}'),
        (BINARY, b'{"\\udfff": 1}'),
        ({"content-type": codec.STRUCTURED}, structured(id="\\udc00")),
        ({"content-type": codec.STRUCTURED}, structured(data=["ok", "\\ud800x"])),
    ],
)
def test_a_lone_surrogate_is_not_text(headers: dict[str, str], body: bytes) -> None:
    # json.loads keeps it; it would only fail later, when stored, hashed or sent on.
    # json.dumps wrote the structured ones' backslash as two: make it an escape again.
    error = rejection(headers, body.replace(b"\\\\u", b"\\u"))
    assert error.message == "Invalid JSON"
    assert "surrogate" in error.details[0]


def test_a_surrogate_pair_is_one_character() -> None:
    assert codec.decode(BINARY, b'{"face": "\\ud83d\\ude00"}').get_data() == {"face": "\U0001f600"}


@pytest.mark.parametrize("headers", [BINARY, {"content-type": codec.STRUCTURED}])
def test_json_nested_past_the_parsers_limit_is_a_bad_request(headers: dict[str, str]) -> None:
    error = rejection(headers, b"[" * 100_000)
    assert (error.message, error.details) == ("Invalid JSON", ["nested too deeply"])


@pytest.mark.parametrize("attribute", ["id", "source", "type", "subject"])
def test_a_blank_attribute_is_refused_as_knatives_validate_does(attribute: str) -> None:
    error = rejection(BINARY | {f"ce-{attribute}": "  "}, b"{}")
    assert error.details == [{"attribute": attribute, "message": "must not be blank"}]


@pytest.mark.parametrize("value", ["foo bar", "text/", "/json", "text/plain; charset"])
def test_a_content_type_that_is_no_media_type_is_refused(value: str) -> None:
    error = rejection(BINARY | {"content-type": value}, b"x")
    assert error.details[0]["attribute"] == "datacontenttype"


@pytest.mark.parametrize(
    "value", ["text/plain", "text/plain; charset=utf-8", 'text/plain;charset="utf-8"', "foo"]
)
def test_a_media_type_with_parameters_is_accepted(value: str) -> None:
    assert codec.decode(BINARY | {"content-type": value}, b"x").get_datacontenttype() == value


@pytest.mark.parametrize("value", [[1], {"a": 1}, 2.5, 2**31, -(2**31) - 1])
def test_an_extension_that_is_no_cloudevents_type_is_refused(value: object) -> None:
    # Knative's SDK refuses these at the ingress; an array or object could also nest
    # deeper than anything downstream can handle.
    error = rejection({"content-type": codec.STRUCTURED}, structured(tenant=value))
    assert error.details == [
        {"attribute": "tenant", "message": "must be a string, a boolean or a 32-bit integer"}
    ]


@pytest.mark.parametrize(
    ("value", "kept"), [("blue", "blue"), (True, True), (2.0, 2), (-(2**31), -(2**31))]
)
def test_an_extension_of_a_cloudevents_type_is_kept(value: object, kept: object) -> None:
    event = codec.decode({"content-type": codec.STRUCTURED}, structured(tenant=value))
    assert event.get_extension("tenant") == kept


def test_a_null_extension_is_absent() -> None:
    event = codec.decode({"content-type": codec.STRUCTURED}, structured(tenant=None))
    assert "tenant" not in event.get_attributes()


@pytest.mark.parametrize("value", ["not base64!", "AAA", 5])
def test_data_base64_that_is_not_base64_is_refused(value: object) -> None:
    # The SDK would quietly drop what it cannot decode; Knative's refuses the event.
    error = rejection({"content-type": codec.STRUCTURED}, structured(data_base64=value))
    assert error.details == [{"attribute": "data_base64", "message": "must be base64"}]


def test_data_base64_is_binary_data() -> None:
    event = codec.decode({"content-type": codec.STRUCTURED}, structured(data_base64="/wA="))
    assert event.get_data() == b"\xff\x00"


def test_a_boolean_extension_is_written_as_the_http_binding_writes_it() -> None:
    event = codec.decode({"content-type": codec.STRUCTURED}, structured(flag=True, off=False))
    headers, _ = codec.encode(event)
    assert (headers["ce-flag"], headers["ce-off"]) == ("true", "false")
    assert codec.decode(headers, b"").get_extension("flag") == "true"
