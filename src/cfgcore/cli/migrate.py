"""``cfgcore migrate SRC [--map MAP.yaml] --out DIR``: a legacy file into a config file.

Writes ``DIR/<name>.yaml`` (``--name``, default ``base``) and ``DIR/migration-report.json``,
each atomically, prints the migration report and the validation findings. It refuses
to replace an existing file unless ``--force`` is given. Exit status: 0 when the result
validates, 1 when it has validation errors or the input cannot be read (nothing is
written when the input cannot be read).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from cfgcore.errors import ConfigError

__all__ = ["register"]

REPORT_NAME = "migration-report.json"


def register(subparsers: Any) -> None:
    """Add the ``migrate`` subcommand."""
    p = subparsers.add_parser(
        "migrate",
        help="migrate a legacy INI/.properties/.env/JSON/YAML configuration",
        description="Convert a legacy configuration file into a cfgcore configuration "
        "file typed by the schema, with a report of mapped, unmapped, conflicting and "
        "defaulted keys.",
    )
    p.add_argument("source", metavar="SRC", help="the legacy file")
    p.add_argument("--map", metavar="MAP.yaml", help="mapping file: renames, moves, defaults")
    p.add_argument("--out", metavar="DIR", required=True, help="directory to write into")
    p.add_argument("--name", default="base", help="configuration file name (default: base)")
    p.add_argument(
        "--keep-unmapped",
        action="store_true",
        help="keep keys that match nothing in the schema at their own dotted path",
    )
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=_cmd_migrate)


def _cmd_migrate(args: argparse.Namespace) -> int:
    from cfgcore.config.migration import LegacyConfigMigrator
    from cfgcore.runtime.atomicio import atomic_write_text
    from cfgcore.validation_engine import validate_configuration
    from cfgcore.yamlio import dump_yaml

    name = os.path.basename(args.name)
    if not name or name != args.name:
        raise ConfigError(f"--name must be a plain file name, got {args.name!r}")
    config_path = os.path.join(args.out, f"{name}.yaml")
    report_path = os.path.join(args.out, REPORT_NAME)
    if not args.force:
        existing = [p for p in (config_path, report_path) if os.path.lexists(p)]
        if existing:
            raise ConfigError("already exists (use --force to replace it)", file=existing[0])
    migration = LegacyConfigMigrator(args.map, keep_unmapped=args.keep_unmapped).migrate(
        args.source
    )
    report = validate_configuration(migration.config)
    os.makedirs(args.out, exist_ok=True)
    header = f"# Migrated by cfgcore from {os.path.basename(args.source)}; see {REPORT_NAME}\n"
    # dump_yaml quotes what cfgcore's YAML 1.2 reading would not read back as written:
    # yaml.safe_dump left the text "0o17" plain, and loading the file gave the int 15.
    body = dump_yaml(
        migration.config, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    atomic_write_text(config_path, header + (body if migration.config else "{}\n"))
    data = migration.report.to_dict()
    data["valid"] = report.overall_valid
    atomic_write_text(report_path, json.dumps(data, indent=2, default=str) + "\n")
    print(migration.report)
    for r in report.failures:
        print(f"  {r.severity:9}  {r.message}")
    print(f"wrote {config_path} and {report_path}")
    if not report.overall_valid:
        print("the migrated configuration does not validate: fix the findings above")
        return 1
    return 0
