// Two real OAuth 2.1 authorization servers (oidc-provider) for tests/test_oauth.py, one Node process:
//   OIDC_PROVIDER_ROOT=<folder where oidc-provider is installed> node issuer.mjs PORT_A PORT_B
// A (http://127.0.0.1:PORT_A) is an OpenID Provider (/.well-known/openid-configuration); B publishes only RFC 8414
// metadata (/.well-known/oauth-authorization-server), as a plain OAuth server does. Both sign with the same keys,
// so a token of one differs from the other's only by its `iss`. Each issues JWT access tokens (RFC 9068) to the
// client `nemo-tests` by the client_credentials grant, with the audience set to the requested `resource` (RFC 8707).
// POST /rotate on A puts a new signing key first on both (the old one stays published): a key rotation without a
// restart, so the ports and the issuer URLs stay.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// The package is installed in the tests' cache, not beside this file, and an ES module resolves bare names only
// from its own folder: resolve it from the cache.
const entry = createRequire(`${process.env.OIDC_PROVIDER_ROOT}/`).resolve('oidc-provider');
const { default: Provider } = await import(pathToFileURL(entry).href);

const ports = process.argv.slice(2).map(Number);
const keys = [];

function addKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  keys.unshift({ ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' });
}

function provider(issuer) {
  const resourceServer = (ctx, resource) => ({
    audience: resource,
    scope: 'video other',
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256' } },
  });
  return new Provider(issuer, {
    // One client per user of the tests and of bench/hosted.py: a client_credentials token's subject is its
    // client id.
    clients: ['nemo-tests', 'alice', 'bob', ...Array.from({ length: 100 }, (_, n) => `user${n}`)].map((name) => ({
      client_id: name,
      client_secret: `${name}-secret`,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'video other',
      // Its default, RS256, needs an RSA key; these issuers have only EC keys.
      id_token_signed_response_alg: 'ES256',
    })),
    cookies: { keys: ['not-used-by-the-client-credentials-grant'] },
    scopes: ['video', 'other'],
    ttl: { ClientCredentials: 300 },
    jwks: { keys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: { enabled: true, getResourceServerInfo: resourceServer, useGrantedResource: () => true },
    },
    formats: {
      // Many servers stamp nbf too: the verifier's not-before check then has a real claim to read.
      customizers: { jwt: (ctx, token, jwt) => { jwt.payload.nbf = jwt.payload.iat; } },
    },
  });
}

const issuers = ports.map((port) => `http://127.0.0.1:${port}`);
let providers;
function build() {
  providers = issuers.map(provider);
}
addKey();
build();

ports.forEach((port, index) => {
  createServer((req, res) => {
    if (index === 0 && req.method === 'POST' && req.url === '/rotate') {
      addKey();
      build();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kid: keys[0].kid }));
      return;
    }
    if (index > 0) {
      if (req.url.startsWith('/.well-known/openid-configuration')) {
        res.writeHead(404).end();
        return;
      }
      if (req.url.startsWith('/.well-known/oauth-authorization-server')) {
        req.url = '/.well-known/openid-configuration';
      }
    }
    providers[index].callback()(req, res);
  }).listen(port, '127.0.0.1');
});
