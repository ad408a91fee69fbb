"""Turn a training run into what docs/MODEL.md shows: `python -m mlcore.report RUN_DIR OUT_PNG`.

Prints the per-epoch loss table (the seed's columns, plus validation
metrics) as Markdown and draws the loss curves. matplotlib is a dev
dependency, so it is imported here only.
"""
import argparse
import csv

SHOWN = ["epoch", "phase", "loss_D_fake", "loss_D_real", "loss_D", "loss_G_GAN", "loss_G_L1", "loss_G_CE", "loss_G",
         "val_psnr", "val_de2000", "val_auc", "val_cf", "images_per_s"]


def read_losses(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(SHOWN) + " |", "|" + "---|" * len(SHOWN)]
    lines += ["| " + " | ".join(r.get(c, "") for c in SHOWN) + " |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[dict], out_png: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) for r in rows]
    fig, (losses, val) = plt.subplots(1, 2, figsize=(12, 4.5))
    for column in ("loss_G", "loss_G_L1", "loss_G_CE", "loss_G_GAN", "loss_D"):
        values = [float(r[column]) for r in rows]
        if any(values):
            losses.plot(epochs, values, marker=".", label=column)
    losses.set(xlabel="epoch", ylabel="training loss", title="losses")
    losses.legend()
    for column, axis in (("val_psnr", val), ("val_de2000", val.twinx())):
        axis.plot(epochs, [float(r[column]) for r in rows], marker=".", color="C0" if column == "val_psnr" else "C3",
                  label=column)
        axis.set_ylabel(column)
    val.set(xlabel="epoch", title="validation (EMA generator)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="training run folder (holds losses.csv)")
    parser.add_argument("png", help="where to draw the loss curves")
    args = parser.parse_args(argv)
    rows = read_losses(f"{args.run}/losses.csv")
    print(markdown_table(rows))
    plot(rows, args.png)


if __name__ == "__main__":
    main()
