"""A D-lined address is refused on the TLS port as it is accepted, before its handshake,
on every backend: no handshake work for a client the core would refuse anyway."""

from __future__ import annotations

import pytest

from tests.conftest import OPER_NAME, serving
from tests.server.helpers import ask
from tests.server.test_oper import oper_up
from tests.server.test_tls import OPENSSL, PKI, client_context, open_tls, pki, tls_port  # noqa: F401
from tests.server.test_tls_admission import (
    admission_config,
    closed_by_server,
    internals,
    raw_connections,
    refused,
    refused_plaintext,
    registers_over_tls,
)

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is needed")

REASON = "abuse from this network"
REFUSAL = f"D-Lined: {REASON}"


async def test_a_dlined_address_is_closed_before_its_tls_handshake(
    backend: str, pki: PKI, oper_hash: str  # noqa: F811
) -> None:
    config = admission_config(pki, opers={OPER_NAME: oper_hash})
    async with serving(config, backend, suite_defaults=False) as running:
        port = tls_port(running)
        root = await running.client("root")
        await oper_up(root)
        await ask(root, f"DLINE MYSELF 1h 127.0.0.0/24 :{REASON}")
        with raw_connections() as connect:
            # It never sends a byte: only the gate can close it before the timeout.
            assert closed_by_server(connect(port))
        with pytest.raises(OSError):  # the handshake never happens: SSL EOF or a reset
            c = await open_tls(port, client_context(pki))
            await c.close()
        assert internals(running).stats.tls_failures.count == 0  # none was tried
        # Refused for the same reason as on the plaintext port, counted together.
        assert await refused_plaintext(running) == f"Closing Link: 127.0.0.1 ({REFUSAL})"
        assert refused(running, REFUSAL) == 3
        assert internals(running).tls_gate.in_flight == 0
        # Lifted: the next TLS client is admitted.
        await ask(root, "UNDLINE 127.0.0.0/24")
        await registers_over_tls(port, pki, "secure")


async def test_another_address_is_not_refused(
    backend: str, pki: PKI, oper_hash: str  # noqa: F811
) -> None:
    config = admission_config(pki, opers={OPER_NAME: oper_hash})
    async with serving(config, backend, suite_defaults=False) as running:
        root = await running.client("root")
        await oper_up(root)
        await ask(root, "DLINE 192.0.2.0/24 :elsewhere")
        await registers_over_tls(tls_port(running), pki, "secure")
        assert refused(running, "D-Lined: elsewhere") == 0
