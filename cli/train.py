"""`vortex train`: a cm profile by measurement (the default), or with --neural the
quantization-aware training of a neural model file (needs the neural extra)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click
from vortexfmt.cli.files import check_can_write
from vortexfmt.cli.sizes import SizeType
from vortexfmt.spec.cm import MAX_PRIME_SIZE

from vortexfmt import spec
from vortexfmt.errors import VortexError

#: The least --frame-size a profile is measured for: cm codes no smaller frame (``auto``).
MIN_PROFILE_FRAME_SIZE = 256

#: Options that only the neural training takes.
NEURAL_OPTIONS = ("config_name", "steps", "epochs", "batch_size", "lane_length", "lr", "device",
                  "val_fraction", "seed", "checkpoint_every", "init_model", "resume")
#: Options that only a profile takes.
PROFILE_OPTIONS = ("format_name", "prime_size", "frame_size", "layout")


@click.command()
@click.argument("data", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Profile to write (.vxprofile), or with --neural a model file "
              "(.safetensors).")
@click.option("--neural", is_flag=True, help="Train a neural model (the neural and mixed "
              "codecs; needs torch: pip install 'vortexfmt[neural]') instead of a profile.")
@click.option("--format", "format_name", default=None, metavar="NAME",
              help="Profile: the format's name (default: the first file's suffix).")
@click.option("--prime-size", type=SizeType(1, MAX_PRIME_SIZE, auto=True), default=None,
              help="Profile: priming bytes (default auto: measured, the smallest of 64K, "
              "256K and 1M within 1% of the best).")
@click.option("--frame-size", type=SizeType(MIN_PROFILE_FRAME_SIZE, spec.MAX_FRAME_SIZE),
              default="64K", show_default=True,
              help=f"Profile: the frame size it is measured for (at least "
              f"{MIN_PROFILE_FRAME_SIZE}: cm codes no smaller frame).")
@click.option("--layout", default=None, metavar="LAYOUT",
              help="Profile: numeric layout to record for the cm codec (default none).")
@click.option("--config", "config_name", default="small", show_default=True,
              type=click.Choice(["tiny", "small", "medium", "large"]),
              help="Named model size.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Optimizer steps (default 1000 unless --epochs).")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Passes over the training lanes (instead of --steps).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Lanes per step.")
@click.option("--context", "lane_length", type=click.IntRange(min=16, max=65535),
              default=512, show_default=True, help="Lane length in bytes (positions).")
@click.option("--lr", type=float, default=3e-3, show_default=True, help="Peak learning rate.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--val-fraction", type=click.FloatRange(0, 0.9), default=0.05,
              show_default=True, help="Share of lanes held out for validation.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=200,
              show_default=True, help="Steps between checkpoints and validations.")
@click.option("--max-bytes-per-file", type=SizeType(minimum=1), default=None,
              help="Use at most this much of each file (e.g. 1M).")
@click.option("--init", "init_model", default=None, metavar="MODEL",
              help="Fine-tune this model (path or id) instead of starting afresh.")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Continue from a checkpoint written by an earlier run.")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing OUTPUT.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.pass_context
def train(ctx, data, output, neural, format_name, prime_size, frame_size, layout, config_name,
          steps, epochs, batch_size, lane_length, lr, device, val_fraction, seed,
          checkpoint_every, max_bytes_per_file, init_model, resume, force, quiet):
    """Make a profile (or with --neural a model) from DATA (files, directories or globs)
    and write it to OUTPUT.

    A profile primes the cm codec so that small frames start warm: `vortex pack --model
    PROFILE`. Its settings and priming size are chosen by measurement on DATA. Files that a
    MANIFEST.tsv beside them marks bench-only are refused. With --neural, the final
    validation bits per byte is measured with the integer-exact model that packs archives.
    """
    given = {name for name in NEURAL_OPTIONS + PROFILE_OPTIONS
             if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    wrong = given & set(PROFILE_OPTIONS if neural else NEURAL_OPTIONS)
    if wrong:
        names = ", ".join("--" + n.removesuffix("_name").replace("_", "-") for n in sorted(wrong))
        raise click.UsageError(f"{names}: only {'without' if neural else 'with'} --neural")
    _check_output(output, data, force)  # before hours of training, not after
    if not neural:
        _train_profile(data, output, format_name, prime_size, frame_size, layout,
                       max_bytes_per_file, quiet)
        return
    from vortexfmt.codecs import neural_package
    from vortexfmt.errors import MissingExtraError

    try:
        neural_package()
    except MissingExtraError as error:
        click.echo(f"vortex: train --neural: {error}", err=True)
        raise SystemExit(1) from None
    from vortexfmt.neural import registry
    from vortexfmt.neural.network import CONFIGS
    from vortexfmt.neural.train import TrainOptions, expand_inputs
    from vortexfmt.neural.train import train as run_training

    if steps is not None and epochs is not None:
        raise click.UsageError("give --steps or --epochs, not both")
    try:
        files = expand_inputs(data)
        init = registry.resolve(init_model) if init_model else None
        options = TrainOptions(
            config=CONFIGS[config_name], steps=steps or 1000, batch_size=batch_size,
            lane_length=lane_length, lr=lr, device=device, val_fraction=val_fraction,
            seed=seed, checkpoint_every=checkpoint_every, init=init,
            resume=Path(resume) if resume else None, max_bytes_per_file=max_bytes_per_file,
            quiet=quiet, epochs=epochs)
        result = run_training(files, Path(output), options)
    except VortexError as error:
        click.echo(f"vortex: {error}", err=True)
        raise SystemExit(1) from None
    if not quiet:
        click.echo(f"{output}: model {result.model.hex_id} ({config_name}), {result.steps} "
                   f"steps on {len(files)} files; validation {result.val_bits_per_byte_float:.4f}"
                   f" bits/byte (float), {result.val_bits_per_byte_exact:.4f} bits/byte "
                   f"(integer-exact)", err=True)


def _check_output(output: str, data, force: bool) -> None:
    """Refuse an OUTPUT that cannot be written, before any training: an empty name, a
    missing directory, a directory, one of the DATA files, an existing file without -f."""
    from vortexfmt.training_files import expand_inputs

    try:
        directory = os.path.dirname(os.path.abspath(output)) if output else "."
        if output and not os.path.isdir(directory):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), directory)
        if output and os.path.exists(output):
            try:
                sources = [str(source) for source in expand_inputs(data)]
            except VortexError:  # DATA names nothing usable: training says so
                sources = []
            for source in sources:
                check_can_write(output, True, source)
        check_can_write(output, force)
    except OSError as error:
        click.echo(f"vortex: {error.filename}: {error.strerror}", err=True)
        raise SystemExit(1) from None


def _default_format_name(path) -> str:
    """The first file's suffix (else its name), kept to what a profile's name may hold:
    printable ASCII, at most 64 characters; "data" if nothing is left."""
    from vortexfmt.profiles.files import MAX_NAME_LENGTH, is_printable_ascii

    text = path.suffix.lstrip(".") or path.name
    kept = "".join(character for character in text if is_printable_ascii(character))
    return kept[:MAX_NAME_LENGTH] or "data"


def _train_profile(data, output, format_name, prime_size, frame_size, layout,
                   max_bytes_per_file, quiet) -> None:
    from vortexfmt.profiles import save_profile
    from vortexfmt.profiles.files import check_format_name
    from vortexfmt.profiles.train import train_profile
    from vortexfmt.training_files import expand_inputs

    if layout is not None:  # a usage error before training, as vortex pack --layout
        from vortexfmt.codecs.record_layout import LayoutError, parse_layout

        try:
            parse_layout(layout)
        except LayoutError as error:
            raise click.BadParameter(str(error), param_hint="'--layout'") from None
    try:
        if format_name is not None:
            check_format_name(format_name)  # before training, not after
        files = expand_inputs(data)
        name = format_name or _default_format_name(files[0])
        log = None if quiet else (lambda line: click.echo(f"  {line}", err=True))
        result = train_profile(files, name, frame_size=frame_size, prime_size=prime_size,
                               max_bytes_per_file=max_bytes_per_file, layout=layout, log=log)
        save_profile(output, result.profile)
    except VortexError as error:
        click.echo(f"vortex: {error}", err=True)
        raise SystemExit(1) from None
    except ValueError as error:  # a --format or --layout the profile cannot hold
        click.echo(f"vortex: {output}: {error}", err=True)
        raise SystemExit(1) from None
    except OSError as error:
        click.echo(f"vortex: {error.filename or output}: {error.strerror or error}", err=True)
        raise SystemExit(1) from None
    if not quiet:
        profile, settings = result.profile, result.profile.settings
        primed = min(t.coded_bytes for t in result.trials)
        click.echo(f"{output}: profile {profile.hex_id[:16]} for {settings.format!r}: "
                   f"{len(profile.prime)} priming bytes, table_bits {settings.table_bits}, "
                   f"stride {settings.stride}; test frames {result.test_bytes} bytes -> "
                   f"{result.cold_bytes} cold, {primed} primed", err=True)
