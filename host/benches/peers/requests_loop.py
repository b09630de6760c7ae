"""A hand-written page loop with `requests`: the plain Python client the peers bench measures.

    python requests_loop.py URL PAGE_SIZE OUT

Reads `URL?limit=PAGE_SIZE&offset=N` until a page is short, parses each page and writes each
record of its `data` as one JSON line to OUT. Syncs nothing.
"""

import json
import sys

import requests


def main() -> None:
    url, page_size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    session = requests.Session()
    offset = 0
    with open(out, "w", encoding="utf-8") as file:
        while True:
            response = session.get(url, params={"limit": page_size, "offset": offset})
            response.raise_for_status()
            records = response.json()["data"]
            for record in records:
                file.write(json.dumps(record))
                file.write("\n")
            offset += len(records)
            if len(records) < page_size:
                break


if __name__ == "__main__":
    main()
