"use strict";
// Plain script, no build step: live job states, the upload page, the comparison slider and the
// colour controls of the photo page (vividness and colour hints).

(function () {
  const ACTIVE = ["queued", "running"];
  const POLL_MS = 2000;

  // --- Live job states ---------------------------------------------------------------
  // Any element with data-photo and an unfinished data-state is refreshed from the status
  // endpoint until its job finishes; the upload page adds such elements as files arrive.
  function pollStates() {
    const statusUrl = document.body.dataset.statusUrl;
    if (!statusUrl) return;
    const tick = () => {
      const watched = [...document.querySelectorAll("[data-photo]")].filter((el) => ACTIVE.includes(el.dataset.state));
      if (!watched.length) return setTimeout(tick, POLL_MS);
      const ids = [...new Set(watched.map((el) => el.dataset.photo))];
      fetch(statusUrl + "?ids=" + ids.join(","), { headers: { Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
        .then((data) => watched.forEach((el) => data.photos[el.dataset.photo] && showState(el, data.photos[el.dataset.photo])))
        .catch(() => {}) // a missed poll is retried at the next tick
        .finally(() => setTimeout(tick, POLL_MS));
    };
    tick();
  }

  function showState(el, status) {
    if (el.dataset.state === status.state) return;
    if ("reloadWhenFinished" in el.dataset && !ACTIVE.includes(status.state)) {
      document.dispatchEvent(new Event("colorizer:reload")); // lets the colour controls keep edits
      location.reload(); // the photo page shows the result or the reason
      return;
    }
    el.dataset.state = status.state;
    const label = el.querySelector("[data-role=state]");
    label.textContent = status.label;
    label.className = "state state-" + status.state;
    const error = el.querySelector("[data-role=error]");
    if (error) {
      error.textContent = status.error;
      error.hidden = !status.error;
    }
    const thumb = el.querySelector("[data-role=thumb]");
    if (thumb && status.thumbnail) {
      const img = new Image();
      img.alt = "";
      img.src = status.thumbnail;
      thumb.replaceChildren(img);
    }
  }

  // --- Upload page ---------------------------------------------------------------------
  // One request per file (two at a time) so that each file has its own progress bar and
  // its own verdict; the form still works without this script.
  function setUpUpload(form) {
    const input = form.querySelector("input[type=file]");
    const list = document.getElementById("upload-list");
    const csrfToken = form.querySelector("[name=csrfmiddlewaretoken]").value;
    const waiting = [];
    let sending = 0;
    form.classList.add("enhanced");

    const maxBytes = Number(form.dataset.maxBytes);
    const send = (files) => {
      for (const file of files) {
        const item = addItem(file.name);
        // The server would refuse it unread; sending it first would only cost the wait.
        if (file.size > maxBytes) refused(item, file.name + " is " + (file.size / 1e6).toFixed(1) + " MB; the limit is " + maxBytes / 1e6 + " MB");
        else waiting.push({ file, item });
      }
      pump();
    };
    const pump = () => {
      while (sending < 2 && waiting.length) {
        sending += 1;
        uploadOne(waiting.shift()).finally(() => {
          sending -= 1;
          pump();
        });
      }
    };
    const addItem = (name) => {
      const item = document.createElement("li");
      item.className = "upload-item";
      item.dataset.state = "uploading";
      item.innerHTML =
        '<div class="thumb" data-role="thumb"></div><div class="item-body"><div class="row">' +
        '<span class="name"></span><span class="state" data-role="state">Uploading</span></div>' +
        '<div class="progress"><div class="bar"></div></div><p class="error" data-role="error" hidden></p></div>';
      item.querySelector(".name").textContent = name;
      list.prepend(item);
      return item;
    };
    const uploadOne = ({ file, item }) =>
      new Promise((resolve) => {
        const body = new FormData();
        body.append("csrfmiddlewaretoken", csrfToken);
        body.append("files", file);
        const request = new XMLHttpRequest();
        request.open("POST", form.action);
        request.setRequestHeader("Accept", "application/json");
        request.upload.addEventListener("progress", (event) => {
          if (event.lengthComputable) {
            const percent = Math.round((100 * event.loaded) / event.total);
            item.querySelector(".bar").style.width = percent + "%";
            item.querySelector("[data-role=state]").textContent = "Uploading " + percent + "%";
          }
        });
        request.addEventListener("load", () => {
          let body = null;
          try {
            body = JSON.parse(request.responseText);
          } catch (e) { /* reported below */ }
          // 200: the file's verdict; 413 and the like: {"error": {"message": ...}}.
          const result = body && body.results ? body.results[0] : null;
          const reason = result ? result.message : body && body.error ? body.error.message : null;
          if (result && result.photo) accepted(item, result.photo);
          else refused(item, reason || file.name + " could not be uploaded (HTTP " + request.status + ")");
          resolve();
        });
        request.addEventListener("error", () => {
          refused(item, file.name + " could not be uploaded: the connection failed");
          resolve();
        });
        request.send(body);
      });
    const accepted = (item, photo) => {
      const link = document.createElement("a");
      link.href = photo.url;
      link.className = "name";
      link.textContent = item.querySelector(".name").textContent;
      item.querySelector(".name").replaceWith(link);
      item.dataset.state = "uploaded";
      item.dataset.photo = photo.id;
      showState(item, photo);
    };
    const refused = (item, message) => {
      item.dataset.state = "refused";
      const label = item.querySelector("[data-role=state]");
      label.textContent = "Refused";
      label.className = "state state-refused";
      const error = item.querySelector("[data-role=error]");
      error.textContent = message;
      error.hidden = false;
    };

    input.addEventListener("change", () => {
      send(input.files);
      input.value = "";
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(input.files);
    });
    ["dragenter", "dragover"].forEach((type) =>
      form.addEventListener(type, (event) => {
        event.preventDefault();
        form.classList.add("dragging");
      })
    );
    ["dragleave", "drop"].forEach((type) =>
      form.addEventListener(type, (event) => {
        event.preventDefault();
        form.classList.remove("dragging");
      })
    );
    form.addEventListener("drop", (event) => send(event.dataTransfer.files));
  }

  // --- Before/after slider -----------------------------------------------------------
  function setUpCompare(compare) {
    const range = compare.querySelector("input[type=range]");
    range.addEventListener("input", () => compare.style.setProperty("--pos", range.value + "%"));
  }

  // --- Steering the colours: vividness and colour hints ----------------------------------
  // The form posts `vividness` and `hints` (JSON); this keeps them up to date. Hints are in
  // pixels of the upright photo, as the server and the API take them.
  function setUpAdjust(section) {
    const width = Number(section.dataset.width);
    const height = Number(section.dataset.height);
    const maxHints = Number(section.dataset.maxHints);
    const resultVividness = Number(section.dataset.resultVividness);
    const role = (name) => section.querySelector("[data-role=" + name + "]");
    const stage = role("stage");
    const source = role("source");
    const canvas = role("preview");
    const markers = role("markers");
    const range = section.querySelector("input[name=vividness]");
    const hintsField = role("hints");
    const editor = role("hint-editor");
    const colorInput = role("hint-color");
    const swatches = role("swatches");
    const paletteNote = role("palette-note");
    let hints = [];
    try {
      hints = JSON.parse(hintsField.value || "[]");
    } catch (e) { /* none */ }
    // Settings being edited when the page reloads itself (a job finished) are not lost.
    const unsaved = "colorizer-settings:" + location.pathname;
    let edited = false;
    const kept = JSON.parse(sessionStorage.getItem(unsaved) || "null");
    if (kept) {
      sessionStorage.removeItem(unsaved);
      hints = kept.hints;
      range.value = kept.vividness;
    }
    section.addEventListener("input", () => (edited = true));
    section.addEventListener("click", () => (edited = true));
    document.addEventListener("colorizer:reload", () => {
      if (edited) sessionStorage.setItem(unsaved, JSON.stringify({ hints, vividness: range.value }));
    });
    let selected = -1;
    let base = null; // the shown result's pixels, at the preview's size

    const hex = (r, g, b) => "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");

    // Live preview: the shown result's chroma scaled by the new vividness over the one it was
    // made with (an approximation in sRGB: each pixel's distance from its own grey).
    const preview = () => {
      role("vividness-value").textContent = Number(range.value).toFixed(2) + "×";
      if (!base) return;
      const factor = resultVividness > 0 ? Number(range.value) / resultVividness : 1;
      const out = new ImageData(base.width, base.height);
      const from = base.data;
      const to = out.data;
      for (let i = 0; i < from.length; i += 4) {
        const grey = 0.299 * from[i] + 0.587 * from[i + 1] + 0.114 * from[i + 2];
        to[i] = grey + (from[i] - grey) * factor;
        to[i + 1] = grey + (from[i + 1] - grey) * factor;
        to[i + 2] = grey + (from[i + 2] - grey) * factor;
        to[i + 3] = 255;
      }
      canvas.getContext("2d").putImageData(out, 0, 0);
    };
    const loadBase = () => {
      const scale = Math.min(1, 1200 / Math.max(source.naturalWidth, source.naturalHeight));
      canvas.width = Math.max(1, Math.round(source.naturalWidth * scale));
      canvas.height = Math.max(1, Math.round(source.naturalHeight * scale));
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(source, 0, 0, canvas.width, canvas.height);
      base = context.getImageData(0, 0, canvas.width, canvas.height);
      canvas.hidden = false;
      preview();
    };
    if (source.complete && source.naturalWidth) loadBase();
    else source.addEventListener("load", loadBase);
    range.addEventListener("input", preview);

    // The result's own colour at a point: a new hint's starting colour.
    const colourAt = (x, y) => {
      if (!base) return "#808080";
      const px = Math.min(base.width - 1, Math.floor((x / width) * base.width));
      const py = Math.min(base.height - 1, Math.floor((y / height) * base.height));
      const i = 4 * (py * base.width + px);
      return hex(base.data[i], base.data[i + 1], base.data[i + 2]);
    };
    const pointOf = (event) => {
      const box = stage.getBoundingClientRect();
      const clamp = (v, size) => Math.min(size - 1, Math.max(0, Math.floor(v * size)));
      return {
        x: clamp((event.clientX - box.left) / box.width, width),
        y: clamp((event.clientY - box.top) / box.height, height),
      };
    };

    const render = () => {
      hintsField.value = JSON.stringify(hints);
      const count = role("hint-count");
      count.textContent = hints.length + " colour hint" + (hints.length === 1 ? "" : "s") +
        (hints.length >= maxHints ? " (the most there may be)" : "");
      role("clear-hints").hidden = !hints.length;
      markers.replaceChildren(
        ...hints.map((hint, index) => {
          const marker = document.createElement("button");
          marker.type = "button";
          marker.className = "hint-marker" + (index === selected ? " selected" : "");
          marker.style.left = ((hint.x + 0.5) / width) * 100 + "%";
          marker.style.top = ((hint.y + 0.5) / height) * 100 + "%";
          marker.style.setProperty("--color", hint.color);
          marker.dataset.index = index;
          marker.textContent = index + 1;
          marker.setAttribute("aria-label", "Colour hint " + (index + 1) + ": " + hint.color + " at " + hint.x + ", " + hint.y);
          return marker;
        })
      );
      editor.hidden = selected < 0;
      if (selected >= 0) {
        role("hint-number").textContent = selected + 1;
        colorInput.value = hints[selected].color;
      }
    };

    // The model's suggestions for the selected hint's point, from its newest result.
    let asked = 0;
    const suggest = () => {
      const hint = hints[selected];
      const ticket = ++asked;
      swatches.replaceChildren();
      paletteNote.textContent = "Asking the model for suggestions…";
      fetch(section.dataset.paletteUrl + "?x=" + hint.x + "&y=" + hint.y, { headers: { Accept: "application/json" } })
        .then((response) => response.json().then((body) => (response.ok ? body : Promise.reject(body.error))))
        .then((body) => {
          if (ticket !== asked) return;
          paletteNote.textContent = "The model suggests:";
          swatches.replaceChildren(
            ...body.colors.map((proposal) => {
              const swatch = document.createElement("button");
              swatch.type = "button";
              swatch.className = "swatch";
              swatch.style.background = proposal.color;
              swatch.dataset.color = proposal.color;
              swatch.title = proposal.color + " (" + Math.round(proposal.probability * 100) + "%)";
              swatch.setAttribute("aria-label", "Use " + proposal.color);
              return swatch;
            })
          );
        })
        .catch((message) => {
          if (ticket === asked) paletteNote.textContent = typeof message === "string" ? message : "No suggestions here.";
        });
    };
    const select = (index) => {
      selected = index;
      render();
      if (index >= 0) suggest();
    };

    // A click on the photo adds a hint; a marker is selected by a click and moved by a drag.
    let drag = null;
    stage.addEventListener("pointerdown", (event) => {
      const marker = event.target.closest(".hint-marker");
      if (!marker) return;
      event.preventDefault();
      drag = { index: Number(marker.dataset.index), moved: false, marker };
      marker.setPointerCapture(event.pointerId);
    });
    stage.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const point = pointOf(event);
      const hint = hints[drag.index];
      if (point.x === hint.x && point.y === hint.y) return;
      drag.moved = true;
      Object.assign(hint, point);
      drag.marker.style.left = ((hint.x + 0.5) / width) * 100 + "%";
      drag.marker.style.top = ((hint.y + 0.5) / height) * 100 + "%";
    });
    stage.addEventListener("pointerup", () => {
      if (!drag) return;
      const index = drag.index;
      drag = null;
      select(index);
    });
    stage.addEventListener("click", (event) => {
      if (event.target.closest(".hint-marker")) return;
      if (hints.length >= maxHints) return;
      const point = pointOf(event);
      hints.push({ x: point.x, y: point.y, color: colourAt(point.x, point.y) });
      select(hints.length - 1);
    });
    markers.addEventListener("keydown", (event) => {
      const marker = event.target.closest(".hint-marker");
      if (marker && (event.key === "Delete" || event.key === "Backspace")) {
        hints.splice(Number(marker.dataset.index), 1);
        select(-1);
      } else if (marker && event.key === "Enter") {
        event.preventDefault();
        select(Number(marker.dataset.index));
      }
    });
    colorInput.addEventListener("input", () => {
      if (selected < 0) return;
      hints[selected].color = colorInput.value;
      render();
    });
    swatches.addEventListener("click", (event) => {
      const swatch = event.target.closest(".swatch");
      if (!swatch || selected < 0) return;
      hints[selected].color = swatch.dataset.color;
      render();
    });
    role("remove-hint").addEventListener("click", () => {
      hints.splice(selected, 1);
      select(-1);
    });
    role("clear-hints").addEventListener("click", () => {
      hints = [];
      select(-1);
    });
    render();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("upload-form");
    if (form) setUpUpload(form);
    document.querySelectorAll("[data-compare]").forEach(setUpCompare);
    document.querySelectorAll("[data-adjust]").forEach(setUpAdjust);
    document.querySelectorAll("form[data-confirm]").forEach((confirmForm) =>
      confirmForm.addEventListener("submit", (event) => {
        if (!confirm(confirmForm.dataset.confirm)) event.preventDefault();
      })
    );
    pollStates();
  });
})();
