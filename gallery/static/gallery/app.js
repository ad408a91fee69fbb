"use strict";
// Plain script, no build step: live job states, the upload page and the comparison slider.

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

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("upload-form");
    if (form) setUpUpload(form);
    document.querySelectorAll("[data-compare]").forEach(setUpCompare);
    document.querySelectorAll("form[data-confirm]").forEach((confirmForm) =>
      confirmForm.addEventListener("submit", (event) => {
        if (!confirm(confirmForm.dataset.confirm)) event.preventDefault();
      })
    );
    pollStates();
  });
})();
