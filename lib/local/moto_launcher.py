"""Starts moto_server with one fix: a distinct dbi_resource_id per RDS DB instance.

moto 5.2.1 gives every DB instance the same DbiResourceId, which breaks a silo apply when
another instance exists in the region (the AWS provider finds the instance by that id).
Arguments are moto_server's own (e.g. -H 127.0.0.1 -p 5000). Used by lib/local/moto.ts.
"""
import secrets
import string
import sys

try:
    from moto.rds import models as rds_models
    from moto.server import main
except ImportError as error:  # pragma: no cover - reported to the caller
    sys.stderr.write(f"moto is not importable by {sys.executable}: {error}\n")
    sys.exit(3)

_original_init = rds_models.DBInstance.__init__
_alphabet = string.ascii_uppercase + string.digits


def _init_with_unique_resource_id(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.dbi_resource_id = "db-" + "".join(secrets.choice(_alphabet) for _ in range(26))


rds_models.DBInstance.__init__ = _init_with_unique_resource_id

if __name__ == "__main__":
    main(sys.argv[1:])
