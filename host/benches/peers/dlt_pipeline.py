"""dlt's `rest_api` source into the `filesystem` destination as JSON lines: the full
`pipeline.run` (extract, normalize, load), as the peers bench measures it.

    python dlt_pipeline.py BASE_URL PATH PAGE_SIZE WORK_DIR

Loads the records of `BASE_URL/PATH?limit=PAGE_SIZE&offset=N` into the table `items` of the
dataset `peers` under `WORK_DIR/data` (dlt's defaults otherwise: gzip-compressed files, nested
lists in child tables). Syncs nothing.
"""

import sys
from pathlib import Path

import dlt
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from dlt.sources.rest_api import rest_api_source


class ShortPageOffsetPaginator(OffsetPaginator):
    """Offset pagination that stops at a short page: the API gives no `total`."""

    def update_state(self, response, data=None):
        super().update_state(response, data)
        if data is not None and len(data) < self.limit:
            self._has_next_page = False


def main() -> None:
    base_url, path, page_size, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "paginator": ShortPageOffsetPaginator(
                    limit=page_size,
                    offset_param="offset",
                    limit_param="limit",
                    total_path=None,
                ),
            },
            "resources": [
                {"name": "items", "endpoint": {"path": path, "data_selector": "data"}},
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="peers",
        pipelines_dir=str(work / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(work / "data").as_uri()),
        dataset_name="peers",
    )
    info = pipeline.run(source, loader_file_format="jsonl")
    info.raise_on_failed_jobs()


if __name__ == "__main__":
    main()
