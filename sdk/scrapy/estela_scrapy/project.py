"""Loading of the Scrapy project in the current directory and listing of its spiders."""

import contextlib
import os
import sys

from scrapy.utils.conf import closest_scrapy_cfg
from scrapy.utils.misc import load_object
from scrapy.utils.project import get_project_settings

from .errors import ProjectError, summarize_exception


def load_project_settings():
    """Return the settings of the Scrapy project around the current directory.

    Raises ProjectError when no scrapy.cfg is found and SCRAPY_SETTINGS_MODULE
    is not set, or when the settings module cannot be imported. Anything that
    the settings module prints goes to stderr.
    """
    if not os.environ.get("SCRAPY_SETTINGS_MODULE") and not closest_scrapy_cfg():
        raise ProjectError(
            f"scrapy.cfg not found in {os.getcwd()} or its parent directories: "
            "run this command in the Scrapy project directory"
        )
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return get_project_settings()
    except Exception as error:
        raise ProjectError("loading the project settings failed:\n" + summarize_exception(error)) from None


def load_spider_loader(settings):
    """Build the project's spider loader, importing every spider module.

    Anything that a spider module prints goes to stderr, so commands that
    print JSON keep stdout clean.
    """
    loader_class = load_object(settings["SPIDER_LOADER_CLASS"])
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return loader_class.from_settings(settings.frozencopy())
    except Exception as error:
        raise ProjectError("loading the project's spiders failed:\n" + summarize_exception(error)) from None


def list_spiders(settings):
    """Return the sorted names of the project's spiders."""
    return sorted(load_spider_loader(settings).list())
