"""A Singer SDK tap for the peers bench's loopback API: one `RESTStream`, records under
`data`, offset pagination that stops at a short page.

    python singer_tap.py --config CONFIG > OUT

Singer messages (one RECORD line per record) go to stdout.
"""

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.pagination import OffsetPaginator
from singer_sdk.streams import RESTStream


class ShortPageOffsetPaginator(OffsetPaginator):
    """Offset pagination that stops when the stream's last page was short."""

    def __init__(self, stream: "Items", page_size: int) -> None:
        super().__init__(start_value=0, page_size=page_size)
        self._stream = stream

    def has_more(self, response) -> bool:
        return self._stream.last_page_records >= self.page_size


class Items(RESTStream):
    name = "items"
    primary_keys = ("id",)
    records_jsonpath = "$.data[*]"
    last_page_records = 0
    schema = th.PropertiesList(
        th.Property("id", th.IntegerType, required=True),
        th.Property("name", th.StringType),
        th.Property("email", th.StringType),
        th.Property("status", th.StringType),
        th.Property("created_at", th.DateTimeType),
        th.Property("amount", th.NumberType),
        th.Property("currency", th.StringType),
        th.Property("tags", th.ArrayType(th.StringType)),
        th.Property(
            "address",
            th.ObjectType(
                th.Property("street", th.StringType),
                th.Property("city", th.StringType),
                th.Property("zip", th.StringType),
                th.Property("country", th.StringType),
            ),
        ),
        th.Property("notes", th.StringType),
    ).to_dict()

    @property
    def url_base(self) -> str:
        return self.config["base_url"]

    @property
    def path(self) -> str:
        return self.config["path"]

    def get_new_paginator(self) -> ShortPageOffsetPaginator:
        return ShortPageOffsetPaginator(self, self.config["page_size"])

    def get_url_params(self, context, next_page_token):
        return {"limit": self.config["page_size"], "offset": next_page_token or 0}

    def parse_response(self, response):
        # The SDK's own parsing (`records_jsonpath`), counted for the paginator.
        count = 0
        for record in super().parse_response(response):
            count += 1
            yield record
        self.last_page_records = count


class TapPeers(Tap):
    name = "tap-peers"
    config_jsonschema = th.PropertiesList(
        th.Property("base_url", th.StringType, required=True),
        th.Property("path", th.StringType, required=True),
        th.Property("page_size", th.IntegerType, required=True),
    ).to_dict()

    def discover_streams(self):
        return [Items(self)]


if __name__ == "__main__":
    TapPeers.cli()
