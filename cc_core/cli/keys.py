"""Key tools: `gen-keypair` and `convert-pem-pubkey` (upstream tools/gen-keypair, tools/convert-pem-pubkey).

Keys use upstream's `.env` format: standard base64 of the raw Ed25519 public key (32 bytes) and of the
Go-style private key (64 bytes: seed followed by public key), so keys move between the two freely.
"""

from __future__ import annotations

import base64
from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def generate_keypair() -> tuple[str, str]:
    """(public, private) as base64 strings in upstream's `.env` format."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(pub).decode(), base64.b64encode(seed + pub).decode()


def pem_to_raw_public(pem: bytes) -> str:
    """Base64 of the raw key in an Ed25519 PKIX PEM public key; `ValueError` for anything else."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as e:
        raise ValueError(f"not a PEM public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key (got {type(key).__name__})")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@click.command("gen-keypair")
def gen_keypair() -> None:
    """Print a new Ed25519 key pair as .env lines (JWT_PUBLIC_KEY / JWT_PRIVATE_KEY)."""
    pub, priv = generate_keypair()
    click.echo(f"JWT_PUBLIC_KEY={pub}")
    click.echo(f"JWT_PRIVATE_KEY={priv}")


@click.command("convert-pem-pubkey")
@click.argument("pem_file", type=click.Path(dir_okay=False, path_type=Path))
def convert_pem_pubkey(pem_file: Path) -> None:
    """Convert a PEM Ed25519 public key (e.g. an external issuer's) to CROSS_LOGIN_JWT_PUBLIC_KEY."""
    try:
        data = pem_file.read_bytes()
    except OSError as e:
        raise click.ClickException(f"{pem_file}: {e.strerror or e}") from None
    try:
        raw = pem_to_raw_public(data)
    except ValueError as e:
        raise click.ClickException(f"{pem_file}: {e}") from None
    click.echo(f"CROSS_LOGIN_JWT_PUBLIC_KEY={raw}")


COMMANDS = [gen_keypair, convert_pem_pubkey]
