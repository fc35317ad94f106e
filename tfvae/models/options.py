"""Each model's hyperparameters, declared once.

A model class lists its options in ``OPTIONS``, a dict of name -> :class:`Option` (default,
check, help). Everything else derives from that one declaration:

* the constructor takes the options as keywords, validates each with its check and stores it as
  an attribute (an unknown keyword is an error naming the model's options);
* ``get_config`` saves every declared option, so a reloaded model runs with the same settings;
* the ``tfvae`` command line makes one flag per option (``--capacity-max``), accepted only for
  the models that declare it, and ``config.json`` records the model's config.

Subclasses inherit their parents' options and may redeclare one (another default) or remove
one (``None``).

Example:
  >>> class MyVAE(VariationalModel):
  ...     OPTIONS = {"beta": Option(1.0, functools.partial(validation.number, minimum=0.0),
  ...                               "KL weight")}
  >>> MyVAE(image_shape=(8, 8, 1), latent_dim=2, beta=2.0).beta
  2.0
"""

import dataclasses
import functools
import typing

from tfvae import validation


@dataclasses.dataclass(frozen=True)
class Option:
    """One hyperparameter.

    Attributes:
      default: the value when not given.
      check: ``(name, value) -> value``, raising ValueError on a bad value (see
        :mod:`tfvae.validation`).
      help: one line for the docs and ``tfvae train --help``.
      flag: the command-line flag without ``--`` (default: the name with dashes); None for options
        that have no flag (networks, nested dicts).
      attribute: where the model keeps the value (default: the name).
    """

    default: typing.Any
    check: typing.Callable
    help: str
    flag: typing.Optional[str] = ""
    attribute: str = ""

    def cli_flag(self, name):
        return None if self.flag is None else (self.flag or name.replace("_", "-"))


def number(**bounds):
    """A check for a finite number within ``bounds`` (see :func:`tfvae.validation.number`)."""
    return functools.partial(validation.number, **bounds)


def choice(*choices):
    return functools.partial(validation.choice, choices=choices)


class DeclaredOptions:
    """Mixin for models: ``OPTIONS`` on the class and its parents, applied by :meth:`set_options`."""

    OPTIONS = {}
    #: hints for keywords a model does not take, e.g. {"num_estimates": "use MIWAE for M > 1"}
    OPTION_HINTS = {}

    @classmethod
    def declared_options(cls):
        """name -> :class:`Option`, parents first."""
        merged = {}
        for klass in reversed(cls.__mro__):
            for name, option in vars(klass).get("OPTIONS", {}).items():
                if option is None:
                    merged.pop(name, None)
                else:
                    merged[name] = option
        return merged

    def set_options(self, given):
        """Validates and stores every declared option (from ``given``, else its default), and
        returns the keywords that are not options (for keras.Model: ``name``, ``dtype``,
        ``trainable``). An unknown keyword is a ValueError."""
        given = dict(given)
        declared = self.declared_options()
        for name, option in declared.items():
            value = given.pop(name, option.default)
            setattr(self, option.attribute or name, option.check(name, value))
        unknown = sorted(set(given) - {"name", "dtype", "trainable"})
        if unknown:
            hints = [self.OPTION_HINTS[k] for k in unknown if k in self.OPTION_HINTS]
            raise ValueError(f"{type(self).__name__} got unknown option(s) {', '.join(map(repr, unknown))}"
                             + (f" ({'; '.join(hints)})" if hints else "")
                             + f"; its options are {', '.join(sorted(declared))}")
        self.check_options()
        return given

    def check_options(self):
        """Checks that involve several options; subclasses extend it."""

    def options_config(self):
        """The declared options' current values, for ``get_config``."""
        return {name: _jsonable(getattr(self, option.attribute or name))
                for name, option in self.declared_options().items()}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


__all__ = ["DeclaredOptions", "Option", "choice", "number"]
