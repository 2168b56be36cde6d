"""The plain-HTTP PKI publication listener: the CRL and OCSP, nothing else.

Relying parties fetch CRL distribution points and OCSP over HTTP by convention
(the data is signed). The CRL is served from memory; OCSP answers from the
in-memory index, signed by the delegated OCSP responder, which is loaded once when
the application is built (a missing or unreadable responder refuses the start).
No database per request.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.config import PkiConfig
from gateway.runtime import RUNTIME, Runtime
from pki.ca import load_ca_certificates
from pki.keys import PkiError, PrivateKey, load_private_key_file
from pki.ocsp import build_ocsp_response

MAX_OCSP_REQUEST = 10_000


@dataclass(frozen=True)
class OcspResponder:
    """Who answers OCSP: the delegated responder, for certificates of ``issuer``.
    The CA key stays locked; only the responder's own key is online."""

    issuer: x509.Certificate
    cert: x509.Certificate
    key: PrivateKey


OCSP_RESPONDER = web.AppKey("ocsp_responder", OcspResponder)


async def crl(request: web.Request) -> web.Response:
    der = request.app[RUNTIME].crl_der
    if der is None:
        raise web.HTTPServiceUnavailable(text="no CRL has been published yet\n")
    if request.path.endswith(".pem"):
        return web.Response(body=x509.load_der_x509_crl(der).public_bytes(Encoding.PEM),
                            content_type="application/x-pem-file")
    return web.Response(body=der, content_type="application/pkix-crl",
                        headers={"Cache-Control": "max-age=60"})


def _answer(request: web.Request, der: bytes) -> web.Response:
    runtime = request.app[RUNTIME]
    responder = request.app[OCSP_RESPONDER]
    body = build_ocsp_response(der, runtime.index.ocsp_status, responder.issuer,
                               signer=(responder.cert, responder.key),
                               now=datetime.now(UTC).replace(microsecond=0),
                               validity=timedelta(minutes=10))
    return web.Response(body=body, content_type="application/ocsp-response",
                        headers={"Cache-Control": "max-age=60"})


async def ocsp_post(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_OCSP_REQUEST:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_OCSP_REQUEST,
                                            actual_size=request.content_length)
    return _answer(request, await request.content.read(MAX_OCSP_REQUEST))


async def ocsp_get(request: web.Request) -> web.Response:
    # RFC 6960 appendix A.1: base64 of the DER request, URL-encoded, in the path.
    try:
        der = base64.b64decode(request.match_info["req"], validate=False)
    except (binascii.Error, ValueError):
        der = b""
    return _answer(request, der)


def load_ocsp_responder(cfg: PkiConfig) -> OcspResponder:
    """The issuing certificate and the delegated responder, from the files the config names."""
    _, issuing = load_ca_certificates(cfg.ca_dir)
    if cfg.ocsp_signer_cert is None or cfg.ocsp_signer_key is None:
        raise ValueError("pki.ocsp_signer_cert and pki.ocsp_signer_key are needed for OCSP")
    try:
        cert = x509.load_pem_x509_certificate(cfg.ocsp_signer_cert.read_bytes())
    except OSError as exc:
        raise PkiError(f"cannot read the OCSP signer certificate {cfg.ocsp_signer_cert}: "
                       f"{exc.strerror}") from None
    return OcspResponder(issuing, cert, load_private_key_file(cfg.ocsp_signer_key, None))


def create_pki_app(runtime: Runtime) -> web.Application:
    app = web.Application(client_max_size=MAX_OCSP_REQUEST)
    app[RUNTIME] = runtime
    app[OCSP_RESPONDER] = load_ocsp_responder(runtime.state.config.pki)
    app.router.add_get("/crl", crl)
    app.router.add_get("/crl.pem", crl)
    app.router.add_post("/ocsp", ocsp_post)
    app.router.add_get("/ocsp/{req:.+}", ocsp_get)
    return app
