"""Issue 6, part 6: TLS and proxies.

The emulator serves HTTPS with a self-signed certificate that the test makes
with the openssl CLI (127.0.0.1 in subjectAltName).

Findings, as the tests pin them:
- by default the module refuses the certificate with a clear TLS error that
  names the cause (certificate verify failed / self-signed), after one
  attempt: a certificate does not heal with a retry;
- ``validate_certs: false`` works;
- a custom CA bundle works through ``REQUESTS_CA_BUNDLE`` in the controller's
  environment (requests reads it; the module has no ``ca_path`` option);
- ``HTTPS_PROXY`` from the environment is honoured: the request goes through
  a CONNECT tunnel of the proxy (requests' ``trust_env``), and TLS is still
  verified end to end through the tunnel.  ``NO_PROXY`` is honoured the same
  way (requests' rules).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from rel_servers import ConnectProxy
from rel_support import API_KEY, ORG, Emu, EmulatorProcess, iccid


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    openssl = shutil.which("openssl")
    assert openssl, "the TLS tests need the openssl CLI"
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def tls_emulator(certificate):
    cert, key = certificate
    with EmulatorProcess(devices=20, org=ORG, api_key=API_KEY,
                         extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]) as process:
        assert process.api_url.startswith("https://")
        yield process


@pytest.fixture
def tls_emu(tls_emulator, certificate):
    tls_emulator.set_faults()
    tls_emulator.reset()
    emu = Emu(tls_emulator)
    emu.cert = str(certificate[0])
    return emu


def _send(ansible, emu, env=None, **args):
    rel_args = {"iccid": iccid(1), "payload": "tls", "qos": 1, **args}
    return ansible.run("downlink.yml", {**emu.creds(), "rel_args": rel_args}, env=env)


def _delivered(emu) -> None:
    emu.process.received(iccid(1), wait_for=1, timeout=20)
    emu.barrier(verify=emu.cert)
    assert [message["payload"] for message in emu.process.received(iccid(1))] == ["tls"]


def test_self_signed_certificate_is_refused_by_default(ansible, tls_emu, execution):
    run = _send(ansible, tls_emu, retries=3)
    assert run.rc == 2, run.describe()
    msg = run.result["msg"]
    assert "certificate verify failed" in msg.lower() or "self-signed" in msg.lower() or "self signed" in msg.lower(), msg
    assert run.result["attempts"] == 1, f"a certificate error was retried: {run.result}"
    assert tls_emu.process.stats()["published"] == 0


def test_validate_certs_false_accepts_it(ansible, tls_emu):
    run = _send(ansible, tls_emu, validate_certs=False)
    assert run.rc == 0, run.describe()
    _delivered(tls_emu)


def test_requests_ca_bundle_trusts_a_custom_ca(ansible, tls_emu, certificate, execution):
    run = _send(ansible, tls_emu, env={"REQUESTS_CA_BUNDLE": str(certificate[0])})
    assert run.rc == 0, run.describe()
    _delivered(tls_emu)


def test_https_proxy_from_the_environment_is_honoured(ansible, tls_emu, certificate, execution):
    with ConnectProxy() as proxy:
        run = _send(ansible, tls_emu, env={"HTTPS_PROXY": proxy.url, "REQUESTS_CA_BUNDLE": str(certificate[0])})
        tunnels = list(proxy.tunnels)
    assert run.rc == 0, run.describe()
    assert tunnels == [f"127.0.0.1:{tls_emu.process.api_url.split(':')[2].split('/')[0]}"], tunnels
    _delivered(tls_emu)


def test_no_proxy_bypasses_the_proxy(ansible, tls_emu, certificate):
    with ConnectProxy() as proxy:
        run = _send(ansible, tls_emu, env={"HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1",
                                           "REQUESTS_CA_BUNDLE": str(certificate[0])})
        tunnels = list(proxy.tunnels)
    assert run.rc == 0, run.describe()
    assert tunnels == []
    _delivered(tls_emu)
