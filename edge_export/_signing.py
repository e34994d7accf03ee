"""Signed bundles: the hospital's server signs each bundle, the phone runs only what it signed.

The signature is ECDSA P-256 with SHA-256 (`ecdsa-p256-sha256/1`) over the exact bytes of the bundle's
`manifest.json`, which holds the `.pte`'s sha256: one signature covers the model, its contract, its
preprocessing and its decision rule. It sits beside the manifest as `manifest.sig` (DER, as Java's
`Signature("SHA256withECDSA")` reads it); it is not part of the artifact's own hash, since it is a
statement about the sealed bundle by a key holder, made after sealing. Keys are PEM files: the private
key (PKCS#8, readable by its owner only) stays on the server; the public key (SubjectPublicKeyInfo,
Java's `X509EncodedKeySpec`) is pinned in the app.
"""

from __future__ import annotations

import os
from pathlib import Path

import teacher
from edge_export._bundle import MANIFEST_NAME, BundleError

SIGNATURE_NAME = "manifest.sig"
SIGNATURE_SCHEME = "ecdsa-p256-sha256/1"
PRIVATE_KEY_NAME = "bundle-signing.key"
PUBLIC_KEY_NAME = "bundle-signing.pub"


def new_signing_key(directory: str | os.PathLike) -> tuple[Path, Path]:
    """A new P-256 key pair in `directory` (private key readable by its owner only); refuses to
    overwrite an existing key, which would orphan every bundle it signed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory = Path(directory)
    private_path, public_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    if private_path.exists() or public_path.exists():
        raise FileExistsError(f"{directory} already holds a signing key ({PRIVATE_KEY_NAME}); keep it or move it away")
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    teacher.write_bytes_atomic(private_path, private_pem, mode=0o600)
    teacher.write_bytes_atomic(public_path, public_pem, mode=0o644)
    return private_path, public_path


def sign_bundle(bundle_dir: str | os.PathLike, private_key: str | os.PathLike) -> Path:
    """Sign a bundle's manifest with the server's private key; writes `manifest.sig` atomically."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    manifest = Path(bundle_dir) / MANIFEST_NAME
    if not manifest.exists():
        raise BundleError(f"{bundle_dir}: not a bundle (no {MANIFEST_NAME})")
    key = _load_key(private_key, private=True)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise BundleError(f"{private_key}: not a P-256 private key (make one with `edgekit keys new`)")
    path = Path(bundle_dir) / SIGNATURE_NAME
    teacher.write_bytes_atomic(path, key.sign(manifest.read_bytes(), ec.ECDSA(hashes.SHA256())), mode=0o644)
    return path


def verify_signature(bundle_dir: str | os.PathLike, public_key: str | os.PathLike) -> None:
    """Refuse (BundleError) a bundle that is unsigned, signed by another key, or whose manifest
    changed after signing; run before anything in the bundle is read."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    bundle_dir = Path(bundle_dir)
    manifest, signature = bundle_dir / MANIFEST_NAME, bundle_dir / SIGNATURE_NAME
    if not manifest.exists():
        raise BundleError(f"{bundle_dir}: not a bundle (no {MANIFEST_NAME})")
    if not signature.exists():
        raise BundleError(f"{bundle_dir}: unsigned (no {SIGNATURE_NAME}): only bundles the hospital signed run")
    key = _load_key(public_key, private=False)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BundleError(f"{public_key}: not an elliptic-curve public key")
    try:
        key.verify(signature.read_bytes(), manifest.read_bytes(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BundleError(f"{bundle_dir}: the signature does not match: the manifest was changed after signing, "
                          f"or another key signed it") from None


def _load_key(path: str | os.PathLike, *, private: bool):
    from cryptography.hazmat.primitives import serialization

    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: no such key file")
    try:
        if private:
            return serialization.load_pem_private_key(path.read_bytes(), password=None)
        return serialization.load_pem_public_key(path.read_bytes())
    except ValueError as error:
        raise BundleError(f"{path}: not a PEM {'private' if private else 'public'} key ({error})") from error
