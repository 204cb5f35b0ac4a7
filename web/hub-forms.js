/* Partner hub's embeddable forms: posts them to the API, shows its answers next to the fields, polls a campaign. */
(function () {
  "use strict";

  var SUCCESS = {
    lead: {
      201: "Thank you! Your project reached MiiMOSA; they will contact you soon.",
      202: "Thank you! Your project is accepted and is being forwarded to MiiMOSA; there is nothing more to do."
    },
    campaign: { 201: "Your fundraiser is created." }
  };

  function kroner(ore) {
    return (ore / 100).toLocaleString("da-DK", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) + " kr";
  }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return String(Date.now()) + "-" + String(Math.random()).slice(2);
  }

  function errorBox(form, name) {
    var field = form.elements.namedItem(name);
    var id = form.getAttribute("data-hub-form") + "-" + name + "-error";
    return { field: field, box: document.getElementById(id) };
  }

  function clearErrors(form) {
    Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (box) { box.textContent = ""; });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (el) {
      el.removeAttribute("aria-invalid");
    });
  }

  function say(status, text, kind) {
    status.textContent = text;
    status.className = "hub-status" + (kind ? " " + kind : "");
  }

  /* Each problem next to its field; the first invalid field gets the focus, the live region counts them. */
  function showProblems(form, status, problems, message) {
    var first = null;
    var general = [];
    problems.forEach(function (problem) {
      var target = errorBox(form, problem.field);
      if (!target.box) { general.push(problem.field + ": " + problem.message); return; }
      target.box.textContent = problem.message;
      var control = target.field;
      if (control && control.length !== undefined && !control.tagName) control = control[0]; /* radio group */
      if (control) {
        control.setAttribute("aria-invalid", "true");
        if (!first) first = control;
      }
    });
    var count = problems.length - general.length;
    var text = count ? (count === 1 ? "1 field needs" : count + " fields need") + " your attention." : message;
    say(status, [text].concat(general).join(" "), "error");
    if (first) first.focus(); else status.focus();
  }

  function submitForm(form, event) {
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return; /* a second click while the first is on its way */
    var kind = form.getAttribute("data-hub-form");
    var status = form.querySelector(".hub-status");
    var button = form.querySelector("[type=submit]");
    form.setAttribute("aria-busy", "true");
    button.disabled = true;
    clearErrors(form);
    say(status, "Sending…", "");
    var body = new URLSearchParams(new FormData(form));
    body.forEach(function (value, name) { if (value === "") body.delete(name); });
    if (!form.dataset.idempotencyKey) form.dataset.idempotencyKey = newKey();
    var headers = { "Accept": "application/json" };
    if (kind === "lead") headers["Idempotency-Key"] = form.dataset.idempotencyKey;
    fetch(form.action, { method: "POST", body: body, headers: headers, mode: "cors", credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          handleAnswer(form, kind, status, response, answer);
        });
      })
      .catch(function () {
        say(status, "We could not reach the server. Check your connection and try again.", "error");
        status.focus();
      })
      .then(function () {
        form.removeAttribute("aria-busy");
        button.disabled = form.classList.contains("hub-done");
      });
  }

  function handleAnswer(form, kind, status, response, answer) {
    var code = response.status;
    if (code >= 200 && code < 300) {
      var text = (SUCCESS[kind] && SUCCESS[kind][code]) || SUCCESS[kind][201];
      form.classList.add("hub-done");
      form.setAttribute("data-hub-result", String(code));
      say(status, text, code === 202 ? "accepted" : "success");
      status.focus();
      if (kind === "campaign") showCreated(form, answer);
      return;
    }
    delete form.dataset.idempotencyKey;
    if (code === 422 && answer.problems && answer.problems.length) {
      showProblems(form, status, answer.problems, answer.message);
      return;
    }
    var message = answer.message || "Something went wrong (" + code + ").";
    var retry = response.headers.get("Retry-After");
    if (retry) message += " Please try again in " + retry + " seconds.";
    var problems = answer.problems || [];
    if (problems.length) { showProblems(form, status, problems, message); return; }
    if (answer.error === "donation_code_in_use") {
      showProblems(form, status, [{ field: "donationCode", message: message }], message);
      return;
    }
    say(status, message, "error");
    status.focus();
  }

  function showCreated(form, answer) {
    var section = document.querySelector(".hub-created");
    var campaign = answer.campaign || {};
    if (!section) return;
    section.querySelector(".created-keyword").textContent = campaign.route || "";
    section.querySelector(".created-code").textContent = campaign.donationCode || "";
    var page = form.getAttribute("data-campaign-page") || "campaign.html";
    var query = new URLSearchParams({
      serviceId: String(campaign.serviceId), route: campaign.route || "", code: campaign.donationCode || ""
    });
    section.querySelector(".created-link").href = page + "?" + query.toString();
    section.hidden = false;
    section.querySelector("h2").focus();
  }

  function apiBase(form) {
    return form.action.replace(/\/[^/]*$/, "");
  }

  /* Keywords offered as suggestions from GET /services; the field still works without them. */
  function loadRoutes(form) {
    var list = document.getElementById("campaign-routes");
    var service = form.elements.namedItem("serviceId");
    if (!list || !service) return;
    fetch(apiBase(form) + "/services", { headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { services: [] }; })
      .then(function (answer) {
        var fill = function () {
          list.textContent = "";
          (answer.services || []).forEach(function (s) {
            if (String(s.id) !== service.value) return;
            s.routes.forEach(function (route) {
              var option = document.createElement("option");
              option.value = route;
              list.appendChild(option);
            });
          });
        };
        service.addEventListener("change", fill);
        fill();
      })
      .catch(function () { /* suggestions only */ });
  }

  function watchCampaign(section) {
    var params = new URLSearchParams(window.location.search);
    var serviceId = params.get("serviceId"), route = params.get("route"), code = params.get("code");
    var note = section.querySelector(".campaign-note");
    var total = section.querySelector(".campaign-total");
    if (!serviceId || !route || !code) {
      note.textContent = "This page needs ?serviceId=…&route=…&code=… in its address.";
      return;
    }
    var every = Math.max(500, Number(params.get("every")) || Number(section.getAttribute("data-poll-ms")) || 5000);
    var url = section.getAttribute("data-api") + "/campaigns/" + [serviceId, route, code].map(encodeURIComponent).join("/");
    section.querySelector(".campaign-keyword").textContent = route;
    section.querySelector(".campaign-code").textContent = code;
    var poll = function () {
      fetch(url, { headers: { "Accept": "application/json" }, cache: "no-store" })
        .then(function (response) {
          return response.json().then(function (answer) { return { status: response.status, answer: answer }; });
        })
        .then(function (result) {
          if (result.status === 404) { note.textContent = "There is no such fundraiser."; return; }
          if (result.status !== 200) { note.textContent = result.answer.message || "The total is unavailable."; return; }
          var campaign = result.answer.campaign || {};
          var collected = result.answer.collected || {};
          if (campaign.amount) section.querySelector(".campaign-suggested").textContent = kroner(campaign.amount);
          if (campaign.state === "stopped") note.textContent = "This fundraiser has ended.";
          else note.textContent = collected.note || "";
          if (typeof collected.amount === "number") {
            var text = kroner(collected.amount);
            if (total.textContent !== text) total.textContent = text; /* announce changes only */
            total.setAttribute("data-ore", String(collected.amount));
          }
          if (typeof collected.count === "number") {
            section.querySelector(".campaign-count").textContent =
              "from " + collected.count + (collected.count === 1 ? " donation" : " donations");
          }
          /* Not yet confirmed by Umbrella: apart from the total, which counts only confirmed donations. */
          var pending = collected.pending || {};
          var pendingOutput = section.querySelector(".campaign-pending");
          if (pendingOutput && typeof pending.amount === "number") {
            pendingOutput.textContent = kroner(pending.amount);
            pendingOutput.setAttribute("data-ore", String(pending.amount));
            section.querySelector(".campaign-pending-count").textContent =
              (pending.capped ? "from at least " : "from ") + pending.count +
              (pending.count === 1 ? " donation" : " donations");
          }
        })
        .catch(function () { note.textContent = "The total could not be refreshed; retrying."; })
        .then(function () { window.setTimeout(poll, every); });
    };
    poll();
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-hub-form]"), function (form) {
      form.noValidate = true; /* the API's messages, next to the fields, rather than the browser's bubbles */
      form.addEventListener("submit", function (event) { submitForm(form, event); });
      if (form.getAttribute("data-hub-form") === "campaign") loadRoutes(form);
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-hub-campaign]"), watchCampaign);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
