"""`vortex train`: quantization-aware training of a model file."""

from __future__ import annotations

from pathlib import Path

import click
from vortexfmt.cli.sizes import SizeType


@click.command()
@click.argument("data", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Model file to write (.safetensors).")
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
@click.option("--max-bytes-per-file", type=SizeType(), default=None,
              help="Use at most this much of each file (e.g. 1M).")
@click.option("--init", "init_model", default=None, metavar="MODEL",
              help="Fine-tune this model (path or id) instead of starting afresh.")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Continue from a checkpoint written by an earlier run.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def train(data, output, config_name, steps, epochs, batch_size, lane_length, lr, device,
          val_fraction, seed, checkpoint_every, max_bytes_per_file, init_model, resume, quiet):
    """Train a model on DATA (files, directories or globs) and write it to OUTPUT.

    Files that a MANIFEST.tsv beside them marks bench-only are refused. The final
    validation bits per byte is measured with the integer-exact model that packs archives.
    """
    from vortexfmt.errors import VortexError
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
