"""The Airbyte declarative (low-code) source of `airbyte_manifest.yaml`, run through the CDK's
own entry point, as the Airbyte platform runs a manifest-only connector:

    python airbyte_source.py read --config CONFIG --catalog CATALOG > OUT

Airbyte protocol messages (one RECORD line per record) go to stdout.
"""

import sys
from pathlib import Path

from airbyte_cdk.entrypoint import launch
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource

MANIFEST = Path(__file__).with_name("airbyte_manifest.yaml")


def main() -> None:
    args = sys.argv[1:]
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    catalog_path = args[args.index("--catalog") + 1] if "--catalog" in args else None
    config = YamlDeclarativeSource.read_config(config_path) if config_path else None
    catalog = YamlDeclarativeSource.read_catalog(catalog_path) if catalog_path else None
    source = YamlDeclarativeSource(
        path_to_yaml=str(MANIFEST),
        catalog=catalog,
        config=config,
        config_path=config_path,
    )
    launch(source, args)


if __name__ == "__main__":
    main()
