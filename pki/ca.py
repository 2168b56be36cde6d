"""The company CA: a root and an online issuing intermediate, and what they sign.

The root signs only the issuing CA (pathLen 0), so its key can live offline; the
issuing CA signs client certificates, the gateway's server certificate, the
delegated OCSP responder and the CRL. Every leaf carries a SAN, SKI and AKI.

Pure builders over ``cryptography`` plus reading/writing the CA directory. Must not
know about users in the database, and must not decide who gets a certificate.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.keys import (
    KeyType,
    PkiError,
    PrivateKey,
    PublicKey,
    generate_key,
    key_to_pem,
    load_private_key_file,
    write_public_file,
    write_secret_file,
)

ROOT_CERT = "root.pem"
ROOT_KEY = "root-key.pem"
ISSUING_CERT = "issuing.pem"
ISSUING_KEY = "issuing-key.pem"
CHAIN = "chain.pem"
CA_FILES = (ROOT_CERT, ROOT_KEY, ISSUING_CERT, ISSUING_KEY, CHAIN)

# Leaves start a little in the past so a client whose clock runs a few minutes
# behind does not see a not-yet-valid certificate.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class CertificateAuthority:
    """The online part of the CA: the issuing certificate and key, plus the root."""

    root_cert: x509.Certificate
    issuing_cert: x509.Certificate
    issuing_key: PrivateKey

    @property
    def chain(self) -> list[x509.Certificate]:
        """Issuing CA then root: what a leaf presents after itself."""
        return [self.issuing_cert, self.root_cert]


def new_serial() -> int:
    """A random positive 128-bit serial: the top bit set, 127 random bits below it.

    RFC 5280 caps serials at 20 octets and CA/B guidance asks for >= 64 random
    bits; the fixed top bit keeps every serial 128 bits long (17 DER octets with
    the sign byte) and never zero.
    """
    return (1 << 127) | secrets.randbits(127)


# SHA-256 for both key types: P-256 pairs with it, and RSA-3072 gains nothing
# practical from more while older Windows/macOS importers know SHA-256 best.
SIGNATURE_HASH = hashes.SHA256()


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _organization(cert: x509.Certificate) -> str | None:
    values = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if values else None


def _ca_key_usage(digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )


def _leaf_key_usage(key_encipherment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=key_encipherment,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )


def build_ca(
    common_name: str,
    *,
    key_type: KeyType = "ec-p256",
    now: datetime,
    root_days: int = 7300,
    issuing_days: int = 3650,
) -> tuple[CertificateAuthority, PrivateKey]:
    """Build a root and an issuing CA; return the online CA and the root key."""
    if not common_name.strip():
        raise PkiError("the CA needs a name")
    root_key = generate_key(key_type)
    issuing_key = generate_key(key_type)
    root_name = _name(f"{common_name} Root CA", common_name)
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(new_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=root_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(digital_signature=False), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, SIGNATURE_HASH)
    )
    issuing_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{common_name} Issuing CA", common_name))
        .issuer_name(root_name)
        .public_key(issuing_key.public_key())
        .serial_number(new_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=min(issuing_days, root_days)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(digital_signature=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(issuing_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
            critical=False,
        )
        .sign(root_key, SIGNATURE_HASH)
    )
    return CertificateAuthority(root_cert, issuing_cert, issuing_key), root_key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def save_ca(
    ca_dir: Path, ca: CertificateAuthority, root_key: PrivateKey, passphrase: bytes | None
) -> None:
    """Write the CA files; refuse when any of them already exists."""
    existing = [name for name in CA_FILES if (ca_dir / name).exists()]
    if existing:
        raise PkiError(f"a CA already exists in {ca_dir}; refusing to overwrite it")
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca_dir.chmod(0o700)
    write_secret_file(ca_dir / ROOT_KEY, key_to_pem(root_key, passphrase))
    write_secret_file(ca_dir / ISSUING_KEY, key_to_pem(ca.issuing_key, passphrase))
    write_public_file(ca_dir / ROOT_CERT, _pem(ca.root_cert))
    write_public_file(ca_dir / ISSUING_CERT, _pem(ca.issuing_cert))
    write_public_file(ca_dir / CHAIN, _pem(ca.issuing_cert) + _pem(ca.root_cert))


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise PkiError(f"no CA certificate at {path}; run `certgate init` first") from None
    except ValueError:
        raise PkiError(f"{path} is not a PEM certificate") from None


def load_ca_certificates(ca_dir: Path) -> tuple[x509.Certificate, x509.Certificate]:
    """The root and issuing certificates, without touching any key."""
    return _load_cert(ca_dir / ROOT_CERT), _load_cert(ca_dir / ISSUING_CERT)


def load_ca(ca_dir: Path, passphrase: bytes | None) -> CertificateAuthority:
    """Load the online CA (issuing key decrypted with ``passphrase``)."""
    root, issuing = load_ca_certificates(ca_dir)
    key = load_private_key_file(ca_dir / ISSUING_KEY, passphrase)
    if key.public_key() != issuing.public_key():
        raise PkiError(f"{ca_dir / ISSUING_KEY} does not match {ca_dir / ISSUING_CERT}")
    return CertificateAuthority(root, issuing, key)


def _aki(ca: CertificateAuthority) -> x509.AuthorityKeyIdentifier:
    ski = ca.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _leaf_builder(
    ca: CertificateAuthority, public_key: PublicKey, subject: x509.Name, *, days: int,
    now: datetime,
) -> x509.CertificateBuilder:
    if days < 1:
        raise PkiError("a certificate must be valid for at least one day")
    not_after = min(now + timedelta(days=days), ca.issuing_cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.issuing_cert.subject)
        .public_key(public_key)
        .serial_number(new_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_aki(ca), critical=False)
    )


def _with_revocation_pointers(
    builder: x509.CertificateBuilder, crl_url: str | None, ocsp_url: str | None
) -> x509.CertificateBuilder:
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints([
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier(crl_url)],
                    relative_name=None, reasons=None, crl_issuer=None,
                )
            ]),
            critical=False,
        )
    if ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess([
                x509.AccessDescription(
                    x509.oid.AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(ocsp_url),
                )
            ]),
            critical=False,
        )
    return builder


def user_uri(gateway_host: str, user: str) -> str:
    """The URI SAN naming a user, stable across renewals.

    An https URL under the gateway's own name rather than a URN: RFC 5280 allows
    both, but strict linters and some TLS stacks accept only URLs with a host.
    """
    return f"https://{gateway_host}/.certgate/users/{user}"


def issue_client_cert(
    ca: CertificateAuthority,
    public_key: PublicKey,
    *,
    user: str,
    email: str | None,
    days: int,
    now: datetime,
    crl_url: str | None,
    ocsp_url: str | None,
    uri: str | None = None,
) -> x509.Certificate:
    """A client certificate for ``user``: clientAuth only, SAN with email and/or URI.

    Every leaf needs a SAN (the ``cryptography`` verifier and many peers reject
    leaves without one), so at least one of ``email`` and ``uri`` is required.
    """
    sans: list[x509.GeneralName] = []
    if email:
        sans.append(x509.RFC822Name(email))
    if uri:
        sans.append(x509.UniformResourceIdentifier(uri))
    if not sans:
        raise PkiError("a client certificate needs an email address or a URI naming the user")
    builder = (
        _leaf_builder(ca, public_key, _name(user, _organization(ca.issuing_cert)),
                      days=days, now=now)
        .add_extension(_leaf_key_usage(key_encipherment=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
    )
    builder = _with_revocation_pointers(builder, crl_url, ocsp_url)
    return builder.sign(ca.issuing_key, SIGNATURE_HASH)


def check_public_key(public_key: object) -> PublicKey:
    """Accept EC P-256/P-384 and RSA >= 2048 keys; refuse anything weaker or exotic."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ("secp256r1", "secp384r1"):
            raise PkiError(f"the key uses curve {public_key.curve.name}; use P-256 or P-384")
        return public_key
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise PkiError(f"the RSA key has {public_key.key_size} bits; at least 2048 are needed")
        return public_key
    raise PkiError("only ECDSA (P-256, P-384) and RSA keys are accepted")


def sign_csr(
    ca: CertificateAuthority,
    csr: x509.CertificateSigningRequest,
    *,
    user: str,
    email: str | None,
    days: int,
    now: datetime,
    crl_url: str | None,
    ocsp_url: str | None,
    uri: str | None = None,
) -> x509.Certificate:
    """Issue the client profile for a key that never leaves the user's device.

    Only the CSR's public key is used: whatever subject or extensions it asks for
    are ignored, so a CSR cannot smuggle in a CA flag or another person's name.
    """
    if not csr.is_signature_valid:
        raise PkiError("the CSR signature does not verify")
    public_key = check_public_key(csr.public_key())
    return issue_client_cert(ca, public_key, user=user, email=email, days=days, now=now,
                             crl_url=crl_url, ocsp_url=ocsp_url, uri=uri)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_server_cert(
    ca: CertificateAuthority,
    public_key: PublicKey,
    hostnames: Sequence[str],
    *,
    days: int,
    now: datetime,
) -> x509.Certificate:
    """The gateway's TLS certificate for ``hostnames`` (DNS names or IP addresses)."""
    if not hostnames:
        raise PkiError("a server certificate needs at least one hostname")
    rsa_key = isinstance(public_key, rsa.RSAPublicKey)
    builder = (
        _leaf_builder(ca, public_key, _name(hostnames[0], _organization(ca.issuing_cert)),
                      days=days, now=now)
        .add_extension(_leaf_key_usage(key_encipherment=rsa_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hostnames]), critical=False
        )
    )
    return builder.sign(ca.issuing_key, SIGNATURE_HASH)


def issue_ocsp_signer(
    ca: CertificateAuthority, public_key: PublicKey, *, hostname: str, days: int, now: datetime
) -> x509.Certificate:
    """A delegated OCSP responder certificate (RFC 6960 4.2.2.2)."""
    builder = (
        _leaf_builder(ca, public_key, _name("OCSP Responder", _organization(ca.issuing_cert)),
                      days=days, now=now)
        .add_extension(_leaf_key_usage(key_encipherment=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        # id-pkix-ocsp-nocheck: relying parties need not check the responder's own status.
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(hostname)]),
            critical=False,
        )
    )
    return builder.sign(ca.issuing_key, SIGNATURE_HASH)
