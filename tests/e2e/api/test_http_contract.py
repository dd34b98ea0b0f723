"""The HTTP contract seen by any client: challenge, api-version, permissions, conflicts."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.keyvault.certificates import CertificateClient
from cryptography import x509

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.domain.access import PERMISSIONS
from ledger.domain.context import Ctx
from ledger.settings import Settings
from tests.e2e.api.pki import ExternalCa, der
from tests.e2e.api.served import Served, StaticCredential, start

API = "7.5"
SELF_POLICY = {
    "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
    "x509_props": {"subject": "CN=http.example", "sans": {"dns_names": ["http.example"]}},
    "issuer": {"name": "Self"},
}


class Http:
    """A requests session with the vault's CA and, optionally, a token."""

    def __init__(self, served: Served, token: str | None) -> None:
        self.served = served
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(
        self, method: str, path: str, body: Any = None, api: str | None = API, **headers: str
    ) -> requests.Response:
        params = {"api-version": api} if api else {}
        return self.session.request(
            method,
            self.served.url + path,
            params=params,
            json=body,
            headers=headers,
            timeout=30,
            verify=str(self.served.ca),  # per request: REQUESTS_CA_BUNDLE would win otherwise
        )

    def wait_completed(self, name: str) -> dict[str, Any]:
        for _ in range(200):
            op: dict[str, Any] = self("GET", f"/certificates/{name}/pending").json()
            if op["status"] != "inProgress":
                return op
            time.sleep(0.05)
        raise AssertionError(f"{name} never completed")


@pytest.fixture(scope="module")
def admin(served: Served, admin_token: str) -> Http:
    return Http(served, admin_token)


@pytest.fixture(scope="module")
def ledger(served: Served) -> Iterator[Ledger]:
    """The same ledger, opened beside the server (SQLite takes several processes)."""
    opened = open_ledger(Settings.resolve(home=served.home, environ={}))
    try:
        yield opened
    finally:
        opened.close()


def error_of(response: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def test_no_token_gets_key_vault_challenge(served: Served) -> None:
    anonymous = Http(served, None)
    response = anonymous("POST", "/certificates/x/create")  # no body, as the SDK's probe
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer authorization="https://login.microsoftonline.com/common", '
        'resource="https://vault.azure.net"'
    )
    assert error_of(response)["code"] == "Unauthorized"
    assert response.headers["x-ms-request-id"]


def test_forged_and_expired_tokens_are_refused(served: Served, admin_token: str) -> None:
    head, body, signature = admin_token.split(".")
    forged = Http(served, f"{head}.{body}.{signature[::-1]}")
    response = forged("GET", "/certificates")
    assert response.status_code == 401 and "signature" in error_of(response)["message"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    expired = Http(served, served.token("admin", expires="1s"))
    time.sleep(1.5)
    response = expired("GET", "/certificates")
    assert response.status_code == 401 and "expired" in error_of(response)["message"]


@pytest.mark.parametrize(
    "version", ["7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"]
)
def test_supported_api_versions(admin: Http, version: str) -> None:
    assert admin("GET", "/certificates", api=version).status_code == 200


@pytest.mark.parametrize("version", [None, "8.0", "2016-10-01", "7.6-preview.2", ""])
def test_other_api_versions_are_bad_parameters(admin: Http, version: str | None) -> None:
    response = admin("GET", "/certificates", api=version)
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadParameter"
    assert (
        "api-version" in error_of(response)["message"] or "version" in error_of(response)["message"]
    )


def test_create_answers_202_in_progress_with_location(admin: Http) -> None:
    response = admin("POST", "/certificates/loc/create", {"policy": SELF_POLICY})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "inProgress" and body["csr"]
    assert response.headers["Location"].startswith(f"{admin.served.url}/certificates/loc/pending")
    assert admin.wait_completed("loc")["status"] == "completed"
    again = admin("POST", "/certificates/loc/create", {})  # a new version, with the stored policy
    assert again.status_code == 202
    assert admin.wait_completed("loc")["status"] == "completed"
    versions = admin("GET", "/certificates/loc/versions").json()["value"]
    assert len(versions) == 2


def test_conflicts(admin: Http) -> None:
    manual = {"policy": {**SELF_POLICY, "issuer": {"name": "Unknown"}}}
    assert admin("POST", "/certificates/busy/create", manual).status_code == 202
    busy = admin("POST", "/certificates/busy/create", manual)
    assert busy.status_code == 409 and error_of(busy)["code"] == "Conflict"

    assert admin("POST", "/certificates/dropped/create", {"policy": SELF_POLICY}).status_code == 202
    admin.wait_completed("dropped")
    assert admin("DELETE", "/certificates/dropped").status_code == 200
    taken = admin("POST", "/certificates/dropped/create", {"policy": SELF_POLICY})
    assert taken.status_code == 409
    assert error_of(taken)["innererror"] == {"code": "ObjectIsDeletedButRecoverable"}
    assert admin("DELETE", "/deletedcertificates/dropped").status_code == 204
    assert admin("POST", "/certificates/dropped/create", {"policy": SELF_POLICY}).status_code == 202


def test_merge_with_the_wrong_key_leaves_the_operation(admin: Http) -> None:
    manual = {"policy": {**SELF_POLICY, "issuer": {"name": "Unknown"}}}
    assert admin("POST", "/certificates/wrongkey/create", manual).status_code == 202
    before = admin("GET", "/certificates/wrongkey/pending").json()
    ca = ExternalCa.make()
    other = ca.issue("someone-else", ca.key)  # a certificate for another key
    import base64

    response = admin(
        "POST",
        "/certificates/wrongkey/pending/merge",
        {"x5c": [base64.b64encode(der(other)).decode()]},
    )
    assert response.status_code == 400 and error_of(response)["code"] == "BadParameter"
    assert "pending key pair" in error_of(response)["message"]
    assert admin("GET", "/certificates/wrongkey/pending").json() == before


def test_not_found_codes(admin: Http) -> None:
    assert error_of(admin("GET", "/certificates/absent"))["code"] == "CertificateNotFound"
    assert error_of(admin("GET", "/keys/absent"))["code"] == "KeyNotFound"
    assert error_of(admin("GET", "/secrets/absent"))["code"] == "SecretNotFound"
    pending = admin("GET", "/certificates/absent/pending")
    assert pending.status_code == 404
    assert admin("GET", "/nowhere").status_code == 404


def test_request_id_and_principal_are_recorded(served: Served, admin: Http, ledger: Ledger) -> None:
    served.cli("access", "grant", "carol", "create", "get")
    carol = Http(served, served.token("carol"))
    response = carol(
        "POST",
        "/certificates/traced/create",
        {"policy": SELF_POLICY},
        **{"x-ms-client-request-id": "trace-0001"},
    )
    assert response.status_code == 202
    assert response.headers["x-ms-request-id"] == "trace-0001"
    assert response.headers["x-ms-client-request-id"] == "trace-0001"
    carol.wait_completed("traced")
    cert = ledger.certificate("traced")
    events = list(ledger.events.get(cert.id))
    opened = [e for e in events if type(e).__name__ == "OperationOpened"]
    assert opened[0].actor == "carol" and opened[0].request_id == "trace-0001"
    promoted = [e for e in events if type(e).__name__ == "VersionPromoted"]
    assert promoted[0].actor == "certledger-worker" and promoted[0].request_id == "trace-0001"


# One request per permission: refused (403) without it, served with it.
def _requests(name: str, body_value: str) -> dict[str, tuple[str, str, Any]]:
    return {
        "get": ("GET", f"/certificates/{name}", None),
        "list": ("GET", "/certificates", None),
        "update": ("PATCH", f"/certificates/{name}/", {"tags": {"a": "b"}}),
        "create": ("POST", f"/certificates/{name}-new/create", {"policy": SELF_POLICY}),
        "import": ("POST", f"/certificates/{name}-imp/import", {"value": body_value}),
        "delete": ("DELETE", f"/certificates/{name}", None),
        "recover": ("POST", f"/deletedcertificates/{name}-del/recover", None),
        "purge": ("DELETE", f"/deletedcertificates/{name}-del", None),
        "backup": ("POST", f"/certificates/{name}/backup", None),
        "restore": ("POST", "/certificates/restore", {"value": body_value}),
        "managecontacts": ("GET", "/certificates/contacts", None),
        "getissuers": ("GET", "/certificates/issuers/some-ca", None),
        "listissuers": ("GET", "/certificates/issuers", None),
        "setissuers": ("PUT", "/certificates/issuers/some-ca", {"provider": "LocalCA"}),
        "deleteissuers": ("DELETE", "/certificates/issuers/some-ca", None),
    }


def test_each_missing_permission_is_forbidden(served: Served, admin: Http, ledger: Ledger) -> None:
    requests_by_permission = _requests("perm", "AAAA")
    # manageissuers is an umbrella in Key Vault: no single operation needs it alone.
    assert set(requests_by_permission) == set(PERMISSIONS) - {"manageissuers"}
    assert admin("POST", "/certificates/perm/create", {"policy": SELF_POLICY}).status_code == 202
    assert (
        admin("POST", "/certificates/perm-del/create", {"policy": SELF_POLICY}).status_code == 202
    )
    admin.wait_completed("perm")
    admin.wait_completed("perm-del")
    assert admin("DELETE", "/certificates/perm-del").status_code == 200

    root = Ctx("admin")
    ledger.grant(root, "bob", list(PERMISSIONS))
    bob = Http(served, served.token("bob"))
    for permission, (method, path, body) in requests_by_permission.items():
        ledger.revoke(root, "bob", [permission])
        refused = bob(method, path, body)
        assert refused.status_code == 403, (permission, refused.text)
        assert error_of(refused)["code"] == "Forbidden"
        assert permission in error_of(refused)["message"]
        ledger.grant(root, "bob", [permission])
        allowed = bob(method, path, body)
        assert allowed.status_code != 403, (permission, allowed.text)
    denials = [
        e for e in ledger.events.get(ledger.access().id) if type(e).__name__ == "AccessDenied"
    ]
    assert {e.permission for e in denials if e.actor == "bob"} == set(requests_by_permission)


def test_managed_key_and_secret_refuse_writes(admin: Http) -> None:
    assert admin("POST", "/certificates/ro/create", {"policy": SELF_POLICY}).status_code == 202
    admin.wait_completed("ro")
    version = admin("GET", "/keys/ro/").json()["key"]["kid"].rsplit("/", 1)[-1]
    assert admin("POST", "/keys/ro/create", {"kty": "EC"}).status_code == 409
    assert admin("PUT", "/keys/ro", {"key": {}}).status_code == 409
    assert admin("PATCH", f"/keys/ro/{version}", {}).status_code == 403
    assert admin("DELETE", "/keys/ro").status_code == 403
    assert admin("PUT", "/secrets/ro", {"value": "x"}).status_code == 409
    assert admin("PATCH", f"/secrets/ro/{version}", {}).status_code == 403
    assert admin("DELETE", "/secrets/ro").status_code == 403
    assert admin("PUT", "/secrets/free-name", {"value": "x"}).status_code == 403
    assert admin("GET", f"/secrets/ro/{version}").json()["managed"] is True


def test_verify_endpoint(admin: Http) -> None:
    assert admin("POST", "/certificates/signer/create", {"policy": SELF_POLICY}).status_code == 202
    admin.wait_completed("signer")
    version = admin("GET", "/keys/signer").json()["key"]["kid"].rsplit("/", 1)[-1]
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"m").digest()).rstrip(b"=").decode()
    signed = admin("POST", f"/keys/signer/{version}/sign", {"alg": "ES256", "value": digest})
    assert signed.status_code == 200
    signature = signed.json()["value"]
    ok = admin(
        "POST",
        f"/keys/signer/{version}/verify",
        {"alg": "ES256", "digest": digest, "value": signature},
    )
    assert ok.json() == {"value": True}
    tampered = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    bad = admin(
        "POST",
        f"/keys/signer/{version}/verify",
        {"alg": "ES256", "digest": digest, "value": tampered},
    )
    assert bad.json() == {"value": False}
    wrong_alg = admin("POST", f"/keys/signer/{version}/sign", {"alg": "RS256", "value": digest})
    assert wrong_alg.status_code == 400


def test_openapi_document_describes_the_routes(served: Served) -> None:
    doc = requests.get(f"{served.url}/openapi.json", verify=str(served.ca), timeout=30).json()
    paths = doc["paths"]
    assert "/certificates/{name}/create" in paths and "post" in paths["/certificates/{name}/create"]
    create = paths["/certificates/{name}/create"]["post"]
    assert "202" in create["responses"]
    params = {p["name"] for p in create["parameters"]}
    assert "api-version" in params
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert create["security"] == [{"bearer": []}]
    for path in ("/deletedcertificates/{name}", "/certificates/issuers/{name}", "/keys/{name}"):
        assert path in paths


def test_tls_certificate_verifies_for_ip_hosts(served: Served, admin_token: str) -> None:
    """Clients pointed at https://127.0.0.1:PORT verify the server certificate."""
    context = ssl.create_default_context(cafile=str(served.ca))
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der_cert = tls.getpeercert(binary_form=True)
    assert der_cert is not None
    sans = x509.load_der_x509_certificate(der_cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sans.value.get_values_for_type(x509.DNSName) == ["localhost"]
    ips = {str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)}
    assert ips == {"127.0.0.1", "::1"}

    url = f"https://127.0.0.1:{served.port}"
    answer = requests.get(
        f"{url}/certificates",
        params={"api-version": API},
        verify=str(served.ca),
        timeout=30,
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert answer.status_code == 200
    options = served.client_options()
    with CertificateClient(url, StaticCredential(admin_token), **options) as client:
        assert client.get_certificate("certledger-tls").cer == der_cert


def test_a_pending_poll_waits_for_the_worker(tmp_path: Path) -> None:
    """GET .../pending of an operation in progress answers when the worker has ended it."""
    served = start(tmp_path / "home", "--pending-wait", "20")
    try:
        admin = Http(served, served.token("admin"))
        assert (
            admin("POST", "/certificates/waited/create", {"policy": SELF_POLICY}).status_code == 202
        )
        op = admin("GET", "/certificates/waited/pending").json()
        assert op["status"] == "completed"  # one request, however long the worker took
        assert admin("GET", "/certificates/waited").status_code == 200

        # Nothing in the process can end a manual (issuer Unknown) operation: no waiting.
        manual = {"policy": {**SELF_POLICY, "issuer": {"name": "Unknown"}}}
        assert admin("POST", "/certificates/manual/create", manual).status_code == 202
        began = time.monotonic()
        assert admin("GET", "/certificates/manual/pending").json()["status"] == "inProgress"
        assert time.monotonic() - began < 10
    finally:
        served.stop()
    assert not [line for line in served.log if "Traceback" in line], "".join(served.log)


def test_fast_reads_answer_as_the_routes_do(admin: Http) -> None:
    """The reads served outside FastAPI's routing keep its errors and neighbours."""
    missing = admin("GET", "/certificates/nothing-here")
    assert missing.status_code == 404 and error_of(missing)["code"] == "CertificateNotFound"
    no_op = admin("GET", "/certificates/nothing-here/pending")
    assert no_op.status_code == 404
    assert error_of(no_op)["code"] in ("CertificateNotFound", "PendingCertificateNotFound")
    assert admin("GET", "/certificates/issuers").status_code == 200  # the issuers list
    assert admin("GET", "/certificates/contacts").status_code in (200, 404)  # contacts
    bad = admin("GET", "/certificates/bad_name")
    assert bad.status_code == 400 and error_of(bad)["code"] == "BadParameter"
    assert "x-ms-request-id" in missing.headers


def test_create_bodies_the_fast_path_leaves_to_fastapi(admin: Http) -> None:
    """A create body that is not a valid JSON object gets FastAPI's 400, as before."""
    url = f"{admin.served.url}/certificates/oddbody/create"

    def post(data: bytes, content_type: str | None) -> requests.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        return admin.session.post(
            url,
            params={"api-version": API},
            data=data,
            headers=headers,
            timeout=30,
            verify=str(admin.served.ca),
        )

    for data, content_type in [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"policy": {"key_props": {"kty": 7}}}', "application/json"),
        (json.dumps({"policy": SELF_POLICY}).encode(), "text/plain"),
    ]:
        answer = post(data, content_type)
        assert answer.status_code == 400, (data, content_type, answer.text)
        assert error_of(answer)["code"] == "BadParameter"
        assert "x-ms-request-id" in answer.headers
    created = post(json.dumps({"policy": SELF_POLICY}).encode(), "application/json; charset=utf-8")
    assert created.status_code == 202 and created.json()["status"] == "inProgress"
    assert created.headers["Location"].startswith(f"{admin.served.url}/certificates/oddbody/")
    assert admin.wait_completed("oddbody")["status"] == "completed"
