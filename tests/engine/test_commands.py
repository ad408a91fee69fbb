"""The ML engineer's commands, run as `manage.py` runs them."""
import os

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from PIL import Image

from mlcore.evaluate import evaluate, true_colour_hints
from mlcore.inference import Colorizer
from mlcore.weights import load_generator

from .conftest import synthetic_photo


def test_colorize_writes_full_resolution_pngs(tmp_path, tiny_weights, capsys):
    inputs = []
    for i, size in enumerate([(120, 90), (33, 200)]):
        path = tmp_path / f"old{i}.jpg"
        synthetic_photo(i, size=size).convert("L").save(path)
        inputs.append(str(path))
    call_command("colorize", *inputs, out=str(tmp_path / "out"), weights=str(tiny_weights), size=32)
    for i, size in enumerate([(120, 90), (33, 200)]):
        with Image.open(tmp_path / "out" / f"old{i}.png") as result:
            assert result.size == size and result.mode == "RGB"
    assert "old1.png (33x200)" in capsys.readouterr().out


def test_colorize_reports_an_unreadable_input_and_still_does_the_rest(tmp_path, tiny_weights, capsys):
    good, bad = tmp_path / "good.png", tmp_path / "bad.jpg"
    synthetic_photo(1).save(good)
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(CommandError, match="1 of 2 inputs could not be colorized"):
        call_command("colorize", str(bad), str(good), out=str(tmp_path / "out"), weights=str(tiny_weights))
    assert (tmp_path / "out" / "good.png").exists()
    assert "bad.jpg: not colorized" in capsys.readouterr().err


def test_colorize_without_weights_says_what_to_do(tmp_path, settings):
    settings.COLORIZER_WEIGHTS = str(tmp_path / "missing.safetensors")
    with pytest.raises(CommandError, match=r"weights file not found: .*missing.safetensors \(pass --weights FILE\)"):
        call_command("colorize", str(tmp_path / "x.png"), out=str(tmp_path))


def test_evaluate_prints_ours_beside_no_colour(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "val"
    folder.mkdir()
    for i in range(5):
        synthetic_photo(i).save(folder / f"{i}.png")
    call_command("evaluate_colorizer", weights=str(tiny_weights), data=str(folder), size=32,
                 temperature=[1.0, 0.5], chroma=[1.5, 1.0], working_size=[16, 32], ship=str(tmp_path / "shipped.safetensors"), grid=str(tmp_path / "grid.png"))
    out = capsys.readouterr().out
    assert "5 photos" in out
    rows = [line for line in out.splitlines() if line.startswith("| ours") or line.startswith("| no colour")]
    labels = [r.split("|")[1].strip() for r in rows]
    assert labels == ["no colour"] + [f"ours, T={t}, chroma={c}, at {px}px"
                                      for t in ("1", "0.5") for c in ("1.5", "1") for px in (16, 32)]
    no_colour = rows[0].split("|")
    assert no_colour[-2].strip().startswith("0.0 (")  # grey has no colourfulness
    assert Image.open(tmp_path / "grid.png").size == (3 * 32, 5 * 32)  # 5 photos: grey | ours | truth
    generator, meta = load_generator(tmp_path / "shipped.safetensors")
    assert float(generator.temperature) == 1.0 and meta["inference"] == {"size": 16, "temperature": 1.0, "chroma": 1.5,
                                                                         "certainty": None, "white_balance": None}
    colorizer = Colorizer.load(tmp_path / "shipped.safetensors")
    assert colorizer.chroma == 1.5 and colorizer.size == 16
    # Evaluated as shipped, it scores what its first compared settings scored.
    call_command("evaluate_colorizer", weights=str(tmp_path / "shipped.safetensors"), data=str(folder), size=32)
    [as_shipped] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ours")]
    assert as_shipped.split("|")[2:] == rows[1].split("|")[2:]
    # Numbers are keyed by the folder relative to the repository, as ../shared/datasets/... is.
    key = os.path.relpath(folder, settings.BASE_DIR)
    assert meta["validation"][key]["images"] == 5
    assert set(meta["validation"][key]["ours"]) >= {"psnr", "de2000", "auc"}
    # Shipped again after evaluating another folder, the file keeps both folders' numbers.
    other = tmp_path / "other"
    other.mkdir()
    synthetic_photo(9).save(other / "9.png")
    call_command("evaluate_colorizer", weights=str(tmp_path / "shipped.safetensors"), data=str(other), size=32,
                 ship=str(tmp_path / "shipped.safetensors"))
    # The first folder again, named from the working directory: its entry is replaced, not doubled.
    call_command("evaluate_colorizer", weights=str(tmp_path / "shipped.safetensors"), data=os.path.relpath(folder),
                 size=32, ship=str(tmp_path / "shipped.safetensors"))
    _, meta = load_generator(tmp_path / "shipped.safetensors")
    assert {k: v["images"] for k, v in meta["validation"].items()} == {key: 5, os.path.relpath(other, settings.BASE_DIR): 1}
    assert meta["inference"] == {"size": 16, "temperature": 1.0, "chroma": 1.5,
                                                                         "certainty": None, "white_balance": None}


def test_evaluate_calibrates_the_certainty_curve_on_other_photos_and_ships_it(tmp_path, tiny_weights, capsys):
    folders = {name: tmp_path / name for name in ("dev", "val")}
    for k, folder in enumerate(folders.values()):
        folder.mkdir()
        for i in range(4):
            synthetic_photo(10 * k + i).save(folder / f"{i}.png")
    shipped = tmp_path / "shipped.safetensors"
    call_command("evaluate_colorizer", weights=str(tiny_weights), data=str(folders["dev"]), size=32,
                 working_size=[16], calibrate=str(folders["val"]), ship=str(shipped))
    out = capsys.readouterr().out
    assert f"Certainty curve from 4 photos of {folders['val']} at 16px" in out
    [calibrated] = [line for line in out.splitlines() if line.startswith("| ours")]
    colorizer = Colorizer.load(shipped)
    assert len(colorizer.certainty["gain"]) == 10 and colorizer.certainty["gain"][0] == 1.0
    # The shipped file scores as calibrated; --uniform-gain sets its curve aside.
    call_command("evaluate_colorizer", weights=str(shipped), data=str(folders["dev"]), size=32)
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ours")]
    assert row.split("|")[2:] == calibrated.split("|")[2:]
    call_command("evaluate_colorizer", weights=str(shipped), data=str(folders["dev"]), size=32, uniform_gain=True,
                 ship=str(tmp_path / "uniform.safetensors"))
    assert Colorizer.load(tmp_path / "uniform.safetensors").certainty is None
    with pytest.raises(CommandError, match="image folder not found"):
        call_command("evaluate_colorizer", weights=str(shipped), data=str(folders["dev"]), calibrate=str(tmp_path / "no"))


def test_evaluate_breaks_the_table_down_by_source_prefix(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "dev"
    folder.mkdir()
    for i, name in enumerate(["paris_1", "paris_2", "paris_3", "pets_1", "pets_2"]):
        synthetic_photo(i).save(folder / f"{name}.png")
    call_command("evaluate_colorizer", weights=str(tiny_weights), data=str(folder), size=32,
                 ship=str(tmp_path / "shipped.safetensors"))
    out = capsys.readouterr().out
    by_source = {line.split("|")[1].strip(): line.split("|")[2].strip()
                 for line in out.splitlines() if line.startswith("| pa") or line.startswith("| pe")}
    assert by_source == {"paris": "3", "pets": "2"}
    _, meta = load_generator(tmp_path / "shipped.safetensors")
    shipped = meta["validation"][os.path.relpath(folder, settings.BASE_DIR)]["by source"]
    assert set(shipped) == {"paris", "pets"} and shipped["pets"]["images"] == 2
    assert shipped["pets"]["no colour"]["cf"] == 0.0 and "de2000" in shipped["paris"]["ours"]


@pytest.fixture
def three_photos(tmp_path):
    folder = tmp_path / "dev"
    folder.mkdir()
    for i in range(3):
        synthetic_photo(i).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def colorize_calls(monkeypatch):
    """The (images, hints) of every Colorizer.colorize_batch call, which still runs."""
    calls = []
    colorize_batch = Colorizer.colorize_batch
    monkeypatch.setattr(Colorizer, "colorize_batch",
                        lambda self, images, hints=None, **kw: calls.append((images, hints))
                        or colorize_batch(self, images, hints, **kw))
    return calls


def test_evaluate_compares_numbers_of_true_colour_hints(three_photos, tiny_weights, capsys, colorize_calls):
    call_command("evaluate_colorizer", weights=str(tiny_weights), data=str(three_photos), size=32, hints=[0, 8])
    labels = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines() if line.startswith("| ours")]
    assert labels == ["ours, 0 hints", "ours, 8 hints"]
    assert colorize_calls[0][1] is None and [len(h) for h in colorize_calls[1][1]] == [8, 8, 8]


def test_evaluate_compares_white_balance_strengths_and_ships_the_first(three_photos, tmp_path, tiny_weights, capsys):
    shipped = tmp_path / "shipped.safetensors"
    call_command("evaluate_colorizer", weights=str(tiny_weights), data=str(three_photos), size=32,
                 white_balance=[1.0, 0.0], ship=str(shipped))
    rows = {line.split("|")[1].strip(): line.split("|")[2:] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ours")}
    assert list(rows) == ["ours, white balance 1", "ours, white balance 0"]
    colorizer = Colorizer.load(shipped)
    assert colorizer.white_balance == {"strength": 1.0, "neutral_chroma": 10.0}
    # The shipped file scores as its first compared strength; shipped at 0, it has no balance.
    call_command("evaluate_colorizer", weights=str(shipped), data=str(three_photos), size=32)
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ours")]
    assert row.split("|")[2:] == rows["ours, white balance 1"]
    call_command("evaluate_colorizer", weights=str(shipped), data=str(three_photos), size=32,
                 white_balance=[0.0], ship=str(shipped))
    assert Colorizer.load(shipped).white_balance is None


def test_evaluate_from_old_scans_gives_the_colorizer_worn_grey_copies_and_scores_on_true_lightness(
        three_photos, tmp_path, tiny_weights, capsys, colorize_calls):
    folder = three_photos
    call_command("evaluate_colorizer", weights=str(tiny_weights), data=str(folder), size=32, degraded=True)
    given = colorize_calls[0][0]
    rows = {line.split("|")[1].strip(): line.split("|") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ours") or line.startswith("| no colour")}
    assert set(rows) == {"no colour", "ours, from old scans"}
    originals = [synthetic_photo(i).resize((32, 32)) for i in range(3)]
    for worn, original in zip(given, originals):
        pixels = np.asarray(worn, dtype=np.int16)
        assert (pixels == pixels[..., :1]).all()  # grey
        assert not np.array_equal(pixels[..., 0], np.asarray(original.convert("L"), dtype=np.int16))
    # Scored on the photos' own lightness: a colorizer that adds no colour scores as grey does, worn input or not.
    colorizer = Colorizer.load(tiny_weights, size=32)
    colorizer.chroma = 0.0
    result = evaluate(colorizer, originals, degraded=True)
    assert result["ours"]["psnr"] == pytest.approx(result["no colour"]["psnr"], abs=0.05)
    assert result["ours"]["de2000"] == pytest.approx(result["no colour"]["de2000"], abs=0.05)
    with pytest.raises(CommandError, match="leave out --degraded"):
        call_command("evaluate_colorizer", weights=str(tiny_weights), data=str(folder), degraded=True,
                     ship=str(tmp_path / "x.safetensors"))


def test_true_colour_hints_are_points_of_the_photo_with_its_colour():
    image = Image.new("RGB", (40, 30), (200, 30, 60))
    hints = true_colour_hints(image, 10, np.random.default_rng(0))
    assert len(hints) == 10
    assert all(0 <= h["x"] < 40 and 0 <= h["y"] < 30 and h["color"] == "#c81e3c" for h in hints)


def test_train_colorizer_trains_and_resumes(photo_folder, tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(photo_folder), "--val", str(photo_folder), "--out", str(out), "--arch", "unet",
            "--gen-config", '{"num_downs": 5, "ngf": 8}', "--size", "32", "--batch-size", "4",
            "--pretrain-epochs", "1", "--val-images", "4", "--precision", "fp32"]
    call_command("train_colorizer", *args, "--epochs", "1")
    call_command("train_colorizer", *args, "--epochs", "2", "--resume", str(out / "checkpoint.pt"))
    _, meta = load_generator(out / "generator.safetensors")
    assert meta["arch"] == "unet" and meta["training"]["epochs_trained"] == 2
    assert len((out / "losses.csv").read_text().splitlines()) == 3

    # Fine-tuning starts from the weights, whatever --arch says, and records where it came from.
    tuned = tmp_path / "tuned"
    call_command("train_colorizer", *args, "--epochs", "1", "--arch", "resunet", "--out", str(tuned),
                 "--init", str(out / "generator.safetensors"))
    _, meta = load_generator(tuned / "generator.safetensors")
    assert meta["arch"] == "unet" and meta["config"] == {"num_downs": 5, "ngf": 8}
    assert meta["training"]["init"] == str(out / "generator.safetensors")


def test_train_colorizer_refuses_a_missing_folder(tmp_path):
    with pytest.raises(CommandError, match="image folder not found"):
        call_command("train_colorizer", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run"))


def test_evaluate_colorizer_says_when_a_folder_holds_no_photos(tmp_path, tiny_weights):
    (tmp_path / "notes.txt").write_text("not a photo")
    with pytest.raises(CommandError, match=f"no photos \\(JPEG, PNG, ...\\) in {tmp_path}"):
        call_command("evaluate_colorizer", "--weights", str(tiny_weights), "--data", str(tmp_path))


def test_colorize_takes_vividness_and_hints(tmp_path, tiny_weights, monkeypatch):
    photo = tmp_path / "old.png"
    synthetic_photo(1, size=(60, 40)).convert("L").save(photo)
    asked = []
    colorize = Colorizer.colorize

    def recording(self, image, **settings):
        asked.append(settings)
        return colorize(self, image, **settings)

    monkeypatch.setattr(Colorizer, "colorize", recording)

    call_command("colorize", str(photo), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights),
                 "--vividness", "0", "--hint", "10,20,#3A5FCD", "--hint", "59,39,#ff0000")

    assert asked == [{"vividness": 0.0, "hints": [{"x": 10, "y": 20, "color": "#3a5fcd"},
                                                  {"x": 59, "y": 39, "color": "#ff0000"}]}]
    with Image.open(tmp_path / "out" / "old.png") as result:
        rgb = np.asarray(result).astype(int)
    assert np.abs(rgb - rgb[..., 1:2]).max() <= 1  # vividness 0: grey


@pytest.mark.parametrize(("args", "message"), [
    (["--hint", "10,20"], r"'10,20' is not X,Y,#RRGGBB"),
    (["--hint", "10,20,blue"], r"'10,20,blue' is not X,Y,#RRGGBB"),
    (["--vividness", "2.5"], r"--vividness must be between 0 and 2, got 2.5"),
])
def test_colorize_refuses_bad_settings(tmp_path, tiny_weights, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("colorize", str(tmp_path / "x.png"), "--out", str(tmp_path), "--weights", str(tiny_weights), *args)


def test_colorize_reports_a_hint_outside_one_photo_and_does_the_others(tmp_path, tiny_weights, capsys):
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    synthetic_photo(1, size=(40, 30)).save(small)
    synthetic_photo(2, size=(90, 60)).save(large)
    with pytest.raises(CommandError, match="1 of 2 inputs could not be colorized"):
        call_command("colorize", str(small), str(large), "--out", str(tmp_path / "out"),
                     "--weights", str(tiny_weights), "--hint", "50,10,#ff0000")
    assert "small.png: not colorized: hint 0: x=50 is outside the photo (0 to 39)" in capsys.readouterr().err
    assert (tmp_path / "out" / "large.png").exists()


def test_colorize_with_hints_needs_a_model_that_takes_them(tmp_path, hintless_weights):
    with pytest.raises(CommandError, match=r"--hint: model resunet-\w{8} was trained without colour hints"):
        call_command("colorize", str(tmp_path / "x.png"), "--out", str(tmp_path), "--weights", str(hintless_weights),
                     "--hint", "1,1,#ff0000")


def test_pack_photos_writes_a_random_subset_within_the_budget(photo_folder, tmp_path):
    packed = tmp_path / "packed"
    call_command("pack_photos", "--data", str(photo_folder), "--out", str(packed), "--size", "40", "--max-mib", "0.008")
    files = sorted(packed.iterdir())
    assert 2 < len(files) < 12 and sum(f.stat().st_size for f in files) <= 0.008 * 2 ** 20
    for f in files:
        with Image.open(f) as im:
            assert im.format == "JPEG" and im.size == (40, 40) and im.mode == "RGB"
    with pytest.raises(CommandError, match="already holds images"):
        call_command("pack_photos", "--data", str(photo_folder), "--out", str(packed))
    call_command("pack_photos", "--data", str(photo_folder), "--out", str(tmp_path / "all"), "--size", "40")
    assert len(list((tmp_path / "all").iterdir())) == 12  # every colour photo; the two grey ones skipped


def test_train_colorizer_stops_when_its_minutes_are_spent_and_cpu_training_continues(photo_folder, tmp_path):
    """The GPU recipe in miniature: a packed set, a time budget, bf16; then --init on the CPU."""
    packed, gpu, cpu = tmp_path / "packed", tmp_path / "gpu", tmp_path / "cpu"
    call_command("pack_photos", "--data", str(photo_folder), "--out", str(packed), "--size", "40")
    common = ["--data", str(packed), "--gen-config", '{"ngf": 8, "hints": true}', "--size", "32", "--cache-size", "40",
              "--batch-size", "2", "--ce-weight", "1", "--l1-weight", "10", "--gan-weight", "0"]
    call_command("train_colorizer", *common, "--out", str(gpu), "--epochs", "50", "--minutes", "0.0001",
                 "--precision", "bf16")
    rows = (gpu / "losses.csv").read_text().splitlines()
    assert len(rows) == 2 and (gpu / "checkpoint.pt").exists()  # one epoch, cut short after its first step
    generator, meta = load_generator(gpu / "generator.safetensors")
    assert meta["training"]["samples_seen"] == 2 and meta["training"]["minutes"] == 0.0001
    assert meta["training"]["bf16"] is True
    call_command("train_colorizer", *common, "--out", str(cpu), "--epochs", "1", "--precision", "fp32",
                 "--init", str(gpu / "generator.safetensors"))
    _, meta = load_generator(cpu / "generator.safetensors")
    assert meta["training"]["samples_seen"] == 12 and meta["config"] == {"ngf": 8, "hints": True}
