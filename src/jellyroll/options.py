"""The base of every stage's options model: frozen, strict (an unknown key is an error, never
a silent default), shared by the CLI, the TOML of ``jellyroll run`` and Python."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

Options = TypeVar("Options", bound="StageOptions")


class StageOptions(BaseModel):
    """Options of one stage: the only place its defaults live."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    speed_only: ClassVar[frozenset[str]] = frozenset()
    """Options that change the speed, never a result: left out of :meth:`key_payload`."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_true_or_false_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse true/false (TOML, Python) for an option that is no switch: pydantic took
        ``dstar_min_intensity = true`` as 1.0 (d* blanked almost everywhere) and
        ``xct_voxel_um = true`` as 1 um voxels, exit 0; the command line gives no bool."""
        field = cls.model_fields.get(info.field_name or "")
        items = value if isinstance(value, list | tuple) else (value,)
        if field is None or _admits_bool(field.annotation):
            return value
        if any(isinstance(item, bool) for item in items):
            raise ValueError(f"{str(value).lower()} is no value of this option: it is no switch")
        return value

    def key_payload(self) -> dict[str, Any]:
        """The options as JSON-able values, for stage keys; the :attr:`speed_only` ones left
        out (a run with more threads is the same result, not a stale one to compute
        again)."""
        return self.model_dump(mode="json", exclude=set(self.speed_only))


def _admits_bool(annotation: Any) -> bool:
    """Whether the type ``annotation`` (a union, tuple, ... of them) takes true/false."""
    return annotation is bool or any(_admits_bool(arg) for arg in get_args(annotation))


class OptionsError(ValueError):
    """Options that do not validate; the message names each option and what is wrong.
    ``problems``: (option name, what is wrong) of each, when known; ``model``: the options
    model they were given to."""

    def __init__(
        self,
        message: str,
        problems: list[tuple[str, str]] | None = None,
        model: type[BaseModel] | None = None,
    ) -> None:
        super().__init__(message)
        self.problems = problems or []
        self.model = model


def options_from(model: type[Options], given: dict[str, Any]) -> Options:
    """``model`` built from the options the user gave (None = not given: the model's
    default), with a one-line-per-option error instead of a pydantic traceback."""
    try:
        return model(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as error:
        problems = validation_problems(error)
        raise OptionsError(validation_message(error), problems, model) from error


def validation_problems(error: ValidationError) -> list[tuple[str, str]]:
    """(key, message) of each invalid option; pydantic's "Value error, " before a message
    of jellyroll's own checks is left out."""
    return [
        (
            ".".join(str(part) for part in item["loc"]),
            str(item["msg"]).removeprefix("Value error, "),
        )
        for item in error.errors()
    ]


def validation_message(error: ValidationError) -> str:
    """``key: message`` per invalid option, one per line."""
    return "\n".join(
        f"{key}: {message}" if key else message for key, message in validation_problems(error)
    )
