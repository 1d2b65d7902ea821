"""estela-describe-project: print the spiders of the Scrapy project in the current directory."""

import argparse
import json
import os
import sys

from .errors import ProjectError
from .project import list_spiders, load_project_settings


def build_parser():
    parser = argparse.ArgumentParser(
        prog="estela-describe-project",
        description=(
            "Print one JSON line describing the Scrapy project in the current directory: "
            '{"project_type": "scrapy", "spiders": [...]}.'
        ),
    )
    parser.add_argument(
        "--image",
        action="store_true",
        help='also print "image", the value of the CONTAINER_IMAGE environment variable',
    )
    return parser


def main(argv=None) -> int:
    options = build_parser().parse_args(argv)
    try:
        spiders = list_spiders(load_project_settings())
    except ProjectError as error:
        print(f"estela-describe-project: {error}", file=sys.stderr)
        return 1

    description = {"project_type": "scrapy", "spiders": spiders}
    if options.image:
        description["image"] = os.environ.get("CONTAINER_IMAGE", "")
    print(json.dumps(description))
    return 0
