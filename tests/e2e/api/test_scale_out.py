"""Scaled out on PostgreSQL: two API processes alone, a worker and a projection follower."""

from __future__ import annotations

import subprocess
from pathlib import Path

from azure.keyvault.certificates import CertificateClient, CertificatePolicy, KeyVaultCertificate

from tests.e2e.api.served import CERTLEDGER, StaticCredential, clean_env, start

FAST = {"_polling_interval": 0.1}


def test_two_api_processes_share_one_database(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    env = clean_env(CERTLEDGER_DATABASE_URL=pg_url)
    # The first server creates the tables; the others start on a ready database.
    first = start(home, "--no-worker", "--no-projections", env=env)
    helpers: list[subprocess.Popen[bytes]] = []
    servers = [first]
    try:
        helpers = [
            subprocess.Popen(
                [CERTLEDGER, "--home", str(home), *args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            for args in (("worker", "--interval", "0.1"), ("projections", "run"))
        ]
        second = start(home, "--no-worker", "--no-projections", env=env)
        servers.append(second)
        assert "(API)" in "".join(first.log)
        credential = StaticCredential(first.token())
        with (
            CertificateClient(first.url, credential, **first.client_options()) as one,
            CertificateClient(second.url, credential, **second.client_options()) as two,
        ):
            policy = CertificatePolicy(issuer_name="Self", subject="CN=scaled")
            poller = one.begin_create_certificate("scaled", policy, **FAST)
            created = poller.result()  # completed by the separate worker process
            assert isinstance(created, KeyVaultCertificate)
            seen = two.get_certificate("scaled")  # the other API process reads it at once
            assert seen.cer == created.cer
            two.update_certificate_properties("scaled", tags={"via": "two"})
            assert one.get_certificate("scaled").properties.tags == {"via": "two"}
    finally:
        for server in servers:
            server.stop()
        for helper in helpers:
            helper.terminate()
            helper.wait(timeout=20)
