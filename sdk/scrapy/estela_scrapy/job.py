"""Job configuration that the platform passes to estela-crawl in environment variables."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional

from .errors import ConfigError

DEFAULT_REDIS_STATS_INTERVAL = 5.0


@dataclass(frozen=True)
class JobKey:
    """Job identifier in the form <jid>.<sid>.<pid>: job, spider and project ids."""

    jid: str
    sid: str
    pid: str

    @classmethod
    def parse(cls, text: str) -> "JobKey":
        parts = text.split(".")
        if len(parts) != 3 or not all(parts):
            raise ConfigError(
                f"invalid JOB_INFO field 'key' {text!r}: expected <jid>.<sid>.<pid>"
            )
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.jid}.{self.sid}.{self.pid}"


@dataclass(frozen=True)
class JobInfo:
    """Decoded JOB_INFO: the spider to run and where to report."""

    spider: str
    api_host: str
    auth_token: str
    key: JobKey
    collection: str
    unique: str
    args: Dict[str, str] = field(default_factory=dict)
    env_vars: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CrawlConfig:
    """Everything estela-crawl reads from its environment."""

    job: JobInfo
    redis_url: Optional[str]
    redis_stats_key: str
    redis_stats_interval: float
    memusage_limit_mb: Optional[int]


def decode_job_info_object(text: Optional[str]) -> dict:
    """Decode JOB_INFO into a dict, rejecting anything but a JSON object.

    Error messages never repeat the value because it contains an API token.
    """
    if not text:
        raise ConfigError("missing environment variable JOB_INFO: set it to the job's JSON object")
    if not text.startswith("{"):
        raise ConfigError("invalid JOB_INFO: the value must be a JSON object starting with '{'")
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"invalid JOB_INFO: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    if not isinstance(decoded, dict):
        raise ConfigError("invalid JOB_INFO: the value must be a JSON object")
    return decoded


def parse_job_info(text: Optional[str]) -> JobInfo:
    """Decode and validate the JOB_INFO environment variable."""
    decoded = decode_job_info_object(text)
    api_host = read_api_host(decoded)
    key = JobKey.parse(_required_string(decoded, "key"))
    return JobInfo(
        spider=_required_string(decoded, "spider"),
        api_host=api_host,
        auth_token=_required_string(decoded, "auth_token"),
        key=key,
        collection=_optional_string(decoded, "collection") or str(key),
        unique=_unique_flag(decoded.get("unique", "False")),
        args=_string_mapping(decoded, "args"),
        env_vars=_string_mapping(decoded, "env_vars"),
    )


def read_api_host(decoded: Mapping) -> str:
    """Return the validated api_host of a decoded JOB_INFO, without a trailing slash."""
    api_host = _required_string(decoded, "api_host")
    if not api_host.startswith(("http://", "https://")):
        raise ConfigError(
            f"invalid JOB_INFO field 'api_host' {api_host!r}: expected an http:// or https:// URL"
        )
    return api_host.rstrip("/")


def read_crawl_config(environ: Mapping[str, str]) -> CrawlConfig:
    """Read JOB_INFO, the Redis settings and the memory limit from environ."""
    job = parse_job_info(environ.get("JOB_INFO"))
    return CrawlConfig(
        job=job,
        redis_url=environ.get("REDIS_URL") or None,
        redis_stats_key=environ.get("REDIS_STATS_KEY") or f"scrapy_stats_{job.key}",
        redis_stats_interval=_positive_float(
            environ, "REDIS_STATS_INTERVAL", DEFAULT_REDIS_STATS_INTERVAL
        ),
        memusage_limit_mb=_positive_int(environ, "MEMUSAGE_LIMIT_MB"),
    )


def job_environment(job: JobInfo) -> Dict[str, str]:
    """Return the variables that estela-crawl exports to the spider's process.

    The ESTELA_* names are those that estela-entrypoint exports, so spiders
    written for estela find them. The job's env_vars come last and may
    override them.
    """
    environment = {
        "ESTELA_SPIDER_JOB": str(job.key),
        "ESTELA_SPIDER_NAME": job.spider,
        "ESTELA_API_HOST": job.api_host,
        "ESTELA_AUTH_TOKEN": job.auth_token,
        "ESTELA_COLLECTION": job.collection,
        "ESTELA_UNIQUE_COLLECTION": job.unique,
    }
    environment.update(job.env_vars)
    return environment


def _required_string(decoded: Mapping, name: str) -> str:
    value = decoded.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"invalid JOB_INFO: missing or empty string field '{name}'")
    return value


def _optional_string(decoded: Mapping, name: str) -> Optional[str]:
    value = decoded.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"invalid JOB_INFO field '{name}': expected a string")
    return value


def _unique_flag(value) -> str:
    # The API sends the strings "True" and "False"; accept JSON booleans too.
    if value in (True, "True", "true"):
        return "True"
    if value in (False, "False", "false", None):
        return "False"
    raise ConfigError(f"invalid JOB_INFO field 'unique' {value!r}: expected \"True\" or \"False\"")


def _string_mapping(decoded: Mapping, name: str) -> Dict[str, str]:
    value = decoded.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"invalid JOB_INFO field '{name}': expected a JSON object")

    result = {}
    for key, item in value.items():
        if isinstance(item, bool):
            result[key] = "True" if item else "False"
        elif isinstance(item, (str, int, float)):
            result[key] = str(item)
        else:
            raise ConfigError(
                f"invalid JOB_INFO field '{name}.{key}': expected a string, number or boolean"
            )
    return result


def _positive_float(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"invalid {name} {text!r}: expected a positive number of seconds")
    return value


def _positive_int(environ: Mapping[str, str], name: str) -> Optional[int]:
    text = environ.get(name)
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"invalid {name} {text!r}: expected a positive whole number of MiB")
    return value
