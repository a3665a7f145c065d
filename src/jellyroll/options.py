"""The base of every stage's options model: frozen, strict (an unknown key is an error, never
a silent default), shared by the CLI, the TOML of ``jellyroll run`` and Python."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

Options = TypeVar("Options", bound="StageOptions")


class StageOptions(BaseModel):
    """Options of one stage: the only place its defaults live."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def key_payload(self) -> dict[str, Any]:
        """The options as JSON-able values, for stage keys and provenance records."""
        return self.model_dump(mode="json")


class OptionsError(ValueError):
    """Options that do not validate; the message names each option and what is wrong."""


def options_from(model: type[Options], given: dict[str, Any]) -> Options:
    """``model`` built from the options the user gave (None = not given: the model's
    default), with a one-line-per-option error instead of a pydantic traceback."""
    try:
        return model(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as error:
        raise OptionsError(validation_message(error)) from error


def validation_message(error: ValidationError) -> str:
    """``key: message`` per invalid option, one per line."""
    return "\n".join(
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
    )
