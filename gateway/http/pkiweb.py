"""The plain-HTTP PKI publication listener: the CRL and OCSP, nothing else.

Relying parties fetch CRL distribution points and OCSP over HTTP by convention
(the data is signed). The CRL is served from memory; OCSP answers from the
in-memory index, signed by the delegated OCSP responder. No database per request.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.runtime import RUNTIME, Runtime
from pki.ca import load_ca_certificates
from pki.keys import PrivateKey, load_private_key_file
from pki.ocsp import build_ocsp_response

OCSP_KEY = web.AppKey("ocsp", tuple)
MAX_OCSP_REQUEST = 10_000


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
    issuer, signer = request.app[OCSP_KEY]
    body = build_ocsp_response(der, runtime.index.ocsp_status, issuer,
                               signer=signer, now=datetime.now(UTC).replace(microsecond=0),
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


def _ocsp_signer(runtime: Runtime) -> tuple[x509.Certificate,
                                            tuple[x509.Certificate, PrivateKey]]:
    """The issuing certificate and the delegated responder; the CA key stays locked."""
    cfg = runtime.state.config.pki
    _, issuing = load_ca_certificates(cfg.ca_dir)
    if cfg.ocsp_signer_cert is None or cfg.ocsp_signer_key is None:
        raise ValueError("pki.ocsp_signer_cert and pki.ocsp_signer_key are needed for OCSP")
    cert = x509.load_pem_x509_certificate(cfg.ocsp_signer_cert.read_bytes())
    return issuing, (cert, load_private_key_file(cfg.ocsp_signer_key, None))


def create_pki_app(runtime: Runtime) -> web.Application:
    app = web.Application(client_max_size=MAX_OCSP_REQUEST)
    app[RUNTIME] = runtime
    app[OCSP_KEY] = _ocsp_signer(runtime)
    app.router.add_get("/crl", crl)
    app.router.add_get("/crl.pem", crl)
    app.router.add_post("/ocsp", ocsp_post)
    app.router.add_get("/ocsp/{req:.+}", ocsp_get)
    return app
