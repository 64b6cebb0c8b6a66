// The v1 API as the page uses it: every request carries the bearer token; errors become ApiError.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error) {
      code = String(body.error.code);
      message = String(body.error.message);
    }
  } catch {
    // Not JSON (a proxy's page, say): the status says enough.
  }
  return new ApiError(response.status, code, message, retryAfterOf(response.headers.get("Retry-After")));
}

function retryAfterOf(text) {
  const seconds = Number.parseInt(text ?? "", 10);
  return Number.isFinite(seconds) ? seconds : null;
}

export class Api {
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async fetch(path, init = {}) {
    let response;
    try {
      response = await fetch(path, {
        ...init,
        headers: { ...(init.headers ?? {}), Authorization: `Bearer ${this.token}` },
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "the service could not be reached");
    }
    if (!response.ok) {
      const error = await errorFrom(response);
      if (error.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return response;
  }

  async json(path, init = {}) {
    return (await this.fetch(path, init)).json();
  }

  async send(method, path, body) {
    return this.json(path, {
      method,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async blob(path) {
    return (await this.fetch(path)).blob();
  }

  // XMLHttpRequest, not fetch: only it reports how much of a request body has been sent.
  upload(file, options, onProgress) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      form.append("options", JSON.stringify(options));
      form.append("file", file, file.name);
      const request = new XMLHttpRequest();
      request.open("POST", "/v1/jobs");
      request.setRequestHeader("Authorization", `Bearer ${this.token}`);
      request.setRequestHeader("Idempotency-Key", newKey());
      request.responseType = "text";
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      request.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(request.responseText);
        } catch {
          body = null;
        }
        if (request.status >= 200 && request.status < 300 && body) {
          resolve(body);
          return;
        }
        const error = new ApiError(
          request.status,
          body?.error?.code ?? `http_${request.status}`,
          body?.error?.message ?? (request.statusText || "upload failed"),
          retryAfterOf(request.getResponseHeader("Retry-After")),
        );
        if (error.status === 401) this.onUnauthorized(error);
        reject(error);
      });
      request.addEventListener("error", () => reject(new ApiError(0, "network", "the upload was cut off")));
      request.addEventListener("abort", () => reject(new ApiError(0, "aborted", "the upload was stopped")));
      request.send(form);
    });
  }
}

function newKey() {
  // crypto.randomUUID needs a secure context; a studio on http://host:8000 of a LAN is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// What a person reads next to the form or the job, for any error the API gives.
export function describe(error, limitText = "") {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error?.message ?? error}`;
  const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : " Try again shortly.";
  const said = error.message.replace(/[.\s]+$/, "");
  switch (error.status) {
    case 0:
      return `Could not reach the service (${said}). Check your connection and try again.`;
    case 401:
      return "Your token was not accepted: it is wrong or has expired. Sign in again.";
    case 403:
      return `Your token does not allow this (${said}).`;
    case 404:
      return `Not found: ${said}.`;
    case 409:
      return `Not possible now: ${said}.`;
    case 413:
      return `The file is too large${limitText ? ` (the limit is ${limitText})` : ""}: ${said}.`;
    case 415:
      return `The service does not take this file: ${said}.`;
    case 422:
      return `Please check what you entered: ${said}.`;
    case 429:
      return `Too many requests.${wait}`;
    case 503:
      return `The service is busy or one of its parts is down (${said}).${wait}`;
    default:
      return `The service answered ${error.status}: ${said}.`;
  }
}
