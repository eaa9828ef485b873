"""Exchange API keys: the ``SecretStore`` port, its adapters, the permission guard and log redaction.

- ``store``: the ``SecretStore`` protocol and the ``ApiCredentials`` value (secrets as ``SecretStr``).
- ``keystore``: the embedded default, one AES-256-GCM encrypted file (scrypt-derived key).
- ``vault``: HashiCorp Vault KV v2 through ``hvac``; secrets fetched just in time, never written to disk.
- ``permissions``: parse each exchange's own API-key permission response and refuse keys that could
  move funds (withdraw, transfer), trade derivatives, or whose permissions cannot be read. Fail closed.
- ``redaction``: a logging filter that masks every registered key and secret.
- ``cli_keys``: the ``nutcracker keys`` sub-app (add, list, remove, verify).

Imports ``nutcracker.errors``, the stdlib and its own libraries (``cryptography``, ``hvac``, ``pydantic``,
``typer``). Never imports ``nutcracker.engine``, ``nutcracker.cli`` or ``nutcracker.backtest``: the CLI
wires these adapters into the engine. Inside this package ``import secrets`` would still mean the
stdlib module (absolute imports), but random bytes come from ``os.urandom`` to avoid any doubt.
"""
