// The official MCP TypeScript v2 client (`@modelcontextprotocol/client` 2.4.0), given nothing but
// the MCP URL, end to end.
//
// It proves that a stock client, configured only with the MCP URL and its own client metadata,
// can find its way through a deployment: the first POST gets a 401 whose challenge names the
// protected-resource metadata (PRM); the client reads the PRM, then the authorization server's
// metadata, registers itself dynamically, is authorised, redeems the code for a token, and with
// that token initialises a session and lists the tools. Nothing about the authorization server
// is configured here, so a run that passes shows that the metadata the deployment serves is
// enough, and is accepted by the client's own checks (the PRM `resource` must match the URL it
// called, the authorization server's `issuer` must match where it was found, and the `iss` of
// the authorization response must match that issuer).
//
// There is no browser: `redirectToAuthorization` GETs the authorization URL without following
// redirects and reads `code`, `state` and `iss` from `Location`, which the test authorization
// server answers at once. The redirect URI needs no listener. `connect` then throws
// `UnauthorizedError`; the callback's parameters go to `finishAuth` on the same transport (the
// SDK checks `iss` itself but not `state`, so `state` is checked here), and a new transport
// connects with the token.
//
// Every HTTP request goes through one recording `fetch`, handed to the transport, which also
// uses it for discovery, registration and the token request, and used here for the
// authorization request. The record file (`--record PATH`) is written on every outcome, in the
// shape the Python driver writes, so a harness can check which origins a failing client
// contacted as well as whether it failed.
//
//     npm ci --prefix tests/e2e/ts
//     node tests/e2e/ts/client.mjs http://127.0.0.1:18787/mcp --record /tmp/ts-record.json
//
// Exit 0 when a token was obtained and at least one tool was listed, 1 on any failure (with
// `FAIL: ...` on stderr), 64 on a usage error. The whole run is bounded at 30 s.

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';

import {
    Client,
    StreamableHTTPClientTransport,
    UnauthorizedError
} from '@modelcontextprotocol/client';

const CLIENT_LABEL = '@modelcontextprotocol/client 2.4.0';
const REDIRECT_URI = 'http://127.0.0.1:1/callback';
const DEADLINE_MS = 30_000;
const USAGE = 'usage: node client.mjs MCP_URL --record PATH';

// The state of the run, written to the record file whatever happens.
const record = {
    client: CLIENT_LABEL,
    ok: false,
    error: null,
    token: false,
    tools: [],
    whoami: null,
    requests: []
};

function describeError(error) {
    if (error instanceof Error) {
        const name = error.constructor?.name || error.name || 'Error';
        return `${name}: ${error.message}`;
    }
    return `${typeof error}: ${String(error)}`;
}

// Every request of the run goes through here: the transport's MCP traffic, the SDK's discovery,
// registration and token requests, and the authorization request made by the provider below.
// Requests still waiting for their response headers; see `settle`.
const inFlight = new Set();

async function recordingFetch(input, init) {
    const url = input instanceof Request ? input.url : String(input);
    const fallbackMethod = input instanceof Request ? input.method : 'GET';
    const method = (init?.method ?? fallbackMethod).toUpperCase();
    const entry = { method, url, status: null, content_type: null, www_authenticate: null };
    record.requests.push(entry);
    console.log(`  -> ${method} ${url}`);
    const pending = fetch(input, init);
    inFlight.add(pending);
    let response;
    try {
        response = await pending;
    } catch (error) {
        const cause = error?.cause instanceof Error ? ` (${error.cause.message})` : '';
        console.log(`  <- (no response) ${method} ${url}: ${describeError(error)}${cause}`);
        throw error;
    } finally {
        inFlight.delete(pending);
    }
    entry.status = response.status;
    entry.content_type = response.headers.get('content-type');
    entry.www_authenticate = response.headers.get('www-authenticate');
    console.log(`  <- ${response.status} ${method} ${url}`);
    const challenge = response.headers.get('www-authenticate');
    if (response.status === 401 && challenge) {
        console.log(`     WWW-Authenticate: ${challenge}`);
    }
    return response;
}

// An in-memory OAuthClientProvider for one headless run. `callback` holds the parameters of the
// authorization response once `redirectToAuthorization` has run.
class HeadlessProvider {
    constructor() {
        this.callback = null;
        this._state = randomBytes(16).toString('base64url');
        this._clientInformation = undefined;
        this._tokens = undefined;
        this._codeVerifier = undefined;
        this._discoveryState = undefined;
    }

    get redirectUrl() {
        return REDIRECT_URI;
    }

    get clientMetadata() {
        return {
            client_name: 'specgen e2e',
            redirect_uris: [REDIRECT_URI],
            grant_types: ['authorization_code'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none'
        };
    }

    state() {
        return this._state;
    }

    clientInformation() {
        return this._clientInformation;
    }

    saveClientInformation(clientInformation) {
        this._clientInformation = clientInformation;
    }

    tokens() {
        return this._tokens;
    }

    saveTokens(tokens) {
        this._tokens = tokens;
        record.token = Boolean(tokens?.access_token);
        console.log(`token: ${tokens?.token_type ?? '?'}, scope ${tokens?.scope ?? '(none)'}`);
    }

    saveCodeVerifier(codeVerifier) {
        this._codeVerifier = codeVerifier;
    }

    codeVerifier() {
        if (!this._codeVerifier) {
            throw new Error('no PKCE code verifier was saved');
        }
        return this._codeVerifier;
    }

    saveDiscoveryState(state) {
        this._discoveryState = state;
    }

    discoveryState() {
        return this._discoveryState;
    }

    // Stands in for the browser: the test authorization server approves at once, so the answer
    // is a 302 to the redirect URI, and the redirect is read instead of followed.
    async redirectToAuthorization(authorizationUrl) {
        const url = new URL(authorizationUrl);
        console.log(`authorize: GET ${url.origin}${url.pathname} (redirects not followed)`);
        const response = await recordingFetch(url, { redirect: 'manual' });
        const location = response.headers.get('location');
        if (response.status !== 302 || !location) {
            throw new Error(`/authorize answered ${response.status}, not a 302 with Location`);
        }
        const params = new URL(location, url).searchParams;
        this.callback = params;
        const iss = params.get('iss');
        console.log(
            `authorize: 302 with code=${params.has('code') ? 'yes' : 'no'}, ` +
                `state=${params.has('state') ? 'yes' : 'no'}, iss=${iss ?? '(none)'}`
        );
    }
}

// Waits (at most `ms`) for the requests in flight to get their response headers. The transport
// opens its optional GET stream in the background; closing the client at once would abort it
// before the server answers, and whether it is recorded with a status would depend on timing.
async function settle(ms) {
    let timer;
    const bound = new Promise((resolve) => {
        timer = setTimeout(resolve, ms);
        timer.unref();
    });
    await Promise.race([Promise.allSettled([...inFlight]), bound]);
    clearTimeout(timer);
}

async function run(mcpUrl) {
    const provider = new HeadlessProvider();
    const client = new Client({ name: 'specgen-e2e', version: '0.0.0' });
    const transportOptions = { authProvider: provider, fetch: recordingFetch };

    const first = new StreamableHTTPClientTransport(mcpUrl, transportOptions);
    try {
        await client.connect(first);
        throw new Error('the first connect succeeded without authorization; expected a 401');
    } catch (error) {
        if (!(error instanceof UnauthorizedError)) {
            throw error;
        }
        console.log(`connect: ${describeError(error)} (expected: authorization is needed)`);
    }

    const callback = provider.callback;
    if (!callback) {
        throw new Error('connect threw UnauthorizedError before the authorization request');
    }
    if (!callback.get('code')) {
        throw new Error('the authorization response carried no code');
    }
    const returnedState = callback.get('state');
    if (returnedState !== provider.state()) {
        throw new Error(
            `state mismatch: sent ${provider.state()}, got back ${returnedState ?? '(none)'}`
        );
    }
    // The URLSearchParams form passes `code` and `iss` together; the SDK checks `iss` against
    // the issuer it discovered (RFC 9207) before redeeming the code.
    await first.finishAuth(callback);
    await first.close();

    const second = new StreamableHTTPClientTransport(mcpUrl, transportOptions);
    await client.connect(second);
    const server = client.getServerVersion();
    console.log(
        `initialize: server ${server?.name ?? '?'} ${server?.version ?? '?'}, ` +
            `protocol ${second.protocolVersion ?? '?'}`
    );
    const { tools } = await client.listTools();
    record.tools = tools.map((tool) => tool.name);
    console.log(`tools/list: ${JSON.stringify(record.tools)}`);
    // The handler answers with the claims the router verified and handed on.
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    record.whoami = (whoami.content ?? []).map((block) => block.text ?? '').join(' ');
    console.log(`tools/call whoami: ${record.whoami}`);
    await settle(2000);
    await client.close();

    if (!record.token) {
        throw new Error('no token was obtained');
    }
    if (record.tools.length === 0) {
        throw new Error('the server listed no tool');
    }
}

function parseArgs(argv) {
    let mcpUrl;
    let recordPath;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === '--record' && i + 1 < argv.length) {
            recordPath = argv[++i];
        } else if (!argv[i].startsWith('-') && mcpUrl === undefined) {
            mcpUrl = argv[i];
        } else {
            return null;
        }
    }
    if (!mcpUrl || !recordPath || !URL.canParse(mcpUrl)) {
        return null;
    }
    return { mcpUrl: new URL(mcpUrl), recordPath };
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    if (!args) {
        console.error(USAGE);
        return 64;
    }
    let timer;
    const deadline = new Promise((_, reject) => {
        timer = setTimeout(() => {
            timedOut = true;
            reject(new Error(`no result within ${DEADLINE_MS / 1000} s`));
        }, DEADLINE_MS);
        timer.unref();
    });
    try {
        await Promise.race([run(args.mcpUrl), deadline]);
        record.ok = record.token && record.tools.length > 0;
        console.log(
            'ok: 401, discovery, registration, authorization, token, initialize, tools/list'
        );
    } catch (error) {
        record.ok = false;
        record.error = describeError(error);
        console.error(`FAIL: ${record.error}`);
    } finally {
        clearTimeout(timer);
    }
    try {
        writeFileSync(args.recordPath, JSON.stringify(record, null, 2) + '\n');
    } catch (error) {
        console.error(`FAIL: cannot write the record ${args.recordPath}: ${describeError(error)}`);
        return 1;
    }
    return record.ok ? 0 : 1;
}

// Set when the deadline passes: the work still pending (an open connection, say) would keep
// node alive, so the process exits at once instead of waiting for it.
let timedOut = false;
const code = await main();
if (timedOut) {
    process.exit(code);
}
process.exitCode = code;
