/**
 * The provider table: what each provider needs and which of its quirks the tool adapts to,
 * and Azure's base URL built from a resource endpoint and a deployment.
 */
import { describe, expect, it } from 'vitest';
import { isLoopback } from '../src/config.js';
import {
  AZURE_API_VERSION,
  azureBaseUrl,
  azureDeployment,
  isProviderName,
  KEY_VARIABLES,
  keyRefusal,
  PROVIDER_NAMES,
  PROVIDERS,
  type ProviderName,
} from '../src/providers.js';

const LOCAL = ['ollama', 'lmstudio', 'vllm', 'llamacpp'] as const;
const REMOTE = ['maxtoken', 'openai', 'openrouter', 'azure', 'gemini'] as const;

describe('the provider list', () => {
  it('names every provider once, maxtoken first', () => {
    expect(PROVIDER_NAMES).toEqual([
      'maxtoken',
      'openai',
      'openrouter',
      'azure',
      'gemini',
      'ollama',
      'lmstudio',
      'vllm',
      'llamacpp',
    ]);
    for (const name of PROVIDER_NAMES) expect(PROVIDERS[name].name).toBe(name);
  });

  it('isProviderName accepts the names only', () => {
    for (const name of PROVIDER_NAMES) expect(isProviderName(name)).toBe(true);
    for (const name of ['', 'OpenAI', 'ollama ', 'toString', 'constructor', 'anthropic'])
      expect(isProviderName(name), name).toBe(false);
  });

  it.each(REMOTE.filter((n) => n !== 'azure'))(
    '%s: an https base URL, a key needed, a default model',
    (name) => {
      const p = PROVIDERS[name];
      expect(new URL(p.baseUrl).protocol).toBe('https:');
      expect(p.needsKey).toBe(true);
      expect(p.defaultModel).toBeTruthy();
      expect(p.keyVariables.length).toBeGreaterThan(0);
    },
  );

  it.each(LOCAL)(
    '%s: a loopback base URL ending in /v1, no key needed, the server picks the model',
    (name) => {
      const p = PROVIDERS[name];
      const url = new URL(p.baseUrl);
      expect(isLoopback(url)).toBe(true);
      expect(url.pathname).toBe('/v1');
      expect(p.needsKey).toBe(false);
      expect(p.defaultModel).toBeUndefined();
    },
  );

  it('only Azure sends its key as an api-key header; the others as Bearer', () => {
    for (const name of PROVIDER_NAMES) {
      expect(PROVIDERS[name].keyHeader, name).toBe(name === 'azure' ? 'api-key' : 'bearer');
    }
  });

  it('OPENAI_API_KEY and OPENAI_BASE_URL belong to openai only', () => {
    for (const name of PROVIDER_NAMES) {
      const own = name === 'openai';
      expect(PROVIDERS[name].keyVariables.includes('OPENAI_API_KEY'), name).toBe(own);
      expect(PROVIDERS[name].baseUrlVariables.includes('OPENAI_BASE_URL'), name).toBe(own);
    }
  });

  it('no two providers share a key variable', () => {
    const seen = new Map<string, string>();
    for (const name of PROVIDER_NAMES) {
      for (const variable of PROVIDERS[name].keyVariables) {
        expect(seen.get(variable), `${variable} in ${name}`).toBeUndefined();
        seen.set(variable, name);
      }
    }
  });

  it('each provider reads its documented key variables', () => {
    expect(PROVIDERS.maxtoken.keyVariables).toEqual(['MAXTOKEN_API_KEY']);
    expect(PROVIDERS.openai.keyVariables).toEqual(['OPENAI_API_KEY']);
    expect(PROVIDERS.openrouter.keyVariables).toEqual(['OPENROUTER_API_KEY']);
    expect(PROVIDERS.azure.keyVariables).toEqual(['AZURE_OPENAI_API_KEY']);
    expect(PROVIDERS.gemini.keyVariables).toEqual(['GEMINI_API_KEY', 'GOOGLE_API_KEY']);
    expect(PROVIDERS.vllm.keyVariables).toEqual(['VLLM_API_KEY']);
    expect(PROVIDERS.llamacpp.keyVariables).toEqual(['LLAMA_API_KEY']);
    expect(PROVIDERS.ollama.keyVariables).toEqual(['OLLAMA_API_KEY']);
    expect(PROVIDERS.lmstudio.keyVariables).toEqual(['LMSTUDIO_API_KEY']);
  });

  it('every key variable is in KEY_VARIABLES, with its provider; remote ones name their hosts', () => {
    const listed = PROVIDER_NAMES.flatMap((name) =>
      PROVIDERS[name].keyVariables.map((variable) => `${variable} ${name}`),
    );
    expect(KEY_VARIABLES.map((k) => `${k.name} ${k.provider}`).sort()).toEqual(listed.sort());
    for (const k of KEY_VARIABLES) {
      expect(k.hosts.length > 0, k.name).toBe(PROVIDERS[k.provider].needsKey);
    }
  });
});

describe('quirks', () => {
  it('Gemini gets neither stream_options nor image detail (it rejects unknown fields)', () => {
    expect(PROVIDERS.gemini.streamOptions).toBe(false);
    expect(PROVIDERS.gemini.detail).toBe(false);
    for (const name of PROVIDER_NAMES.filter((n) => n !== 'gemini')) {
      expect(PROVIDERS[name].streamOptions, name).toBe(true);
      expect(PROVIDERS[name].detail, name).toBe(true);
    }
  });

  it('Ollama takes JPEG, PNG and WebP only: a GIF is converted', () => {
    expect(PROVIDERS.ollama.sendable).toEqual(['jpeg', 'png', 'webp']);
    expect(PROVIDERS.ollama.sendable).not.toContain('gif');
  });

  it('servers that cannot fetch image URLs get them downloaded', () => {
    const downloading = PROVIDER_NAMES.filter((n) => PROVIDERS[n].downloadUrls);
    expect(downloading.sort()).toEqual(['llamacpp', 'lmstudio', 'ollama']);
  });

  it('Azure: no default base URL or model, the endpoint variable, api-version 2024-10-21', () => {
    const azure = PROVIDERS.azure;
    expect(azure.baseUrl).toBe('');
    expect(azure.defaultModel).toBeUndefined();
    expect(azure.baseUrlVariables).toEqual(['AZURE_OPENAI_ENDPOINT']);
    expect(AZURE_API_VERSION).toBe('2024-10-21');
    expect(azure.apiVersion).toEqual({
      default: '2024-10-21',
      variables: ['AZURE_OPENAI_API_VERSION', 'OPENAI_API_VERSION'],
    });
    for (const name of PROVIDER_NAMES.filter((n) => n !== 'azure'))
      expect(PROVIDERS[name].apiVersion, name).toBeUndefined();
  });

  it('documented base URLs', () => {
    expect(PROVIDERS.maxtoken.baseUrl).toBe('https://api.maxtoken.io/v1');
    expect(PROVIDERS.openai.baseUrl).toBe('https://api.openai.com/v1');
    expect(PROVIDERS.openrouter.baseUrl).toBe('https://openrouter.ai/api/v1');
    expect(PROVIDERS.gemini.baseUrl).toBe(
      'https://generativelanguage.googleapis.com/v1beta/openai',
    );
    expect(PROVIDERS.ollama.baseUrl).toBe('http://localhost:11434/v1');
    expect(PROVIDERS.lmstudio.baseUrl).toBe('http://localhost:1234/v1');
    expect(PROVIDERS.vllm.baseUrl).toBe('http://localhost:8000/v1');
    expect(PROVIDERS.llamacpp.baseUrl).toBe('http://localhost:8080/v1');
  });
});

describe('azureBaseUrl', () => {
  it('adds /openai/deployments/NAME to a resource endpoint', () => {
    expect(azureBaseUrl('https://contoso.openai.azure.com', 'gpt-4o-prod')).toBe(
      'https://contoso.openai.azure.com/openai/deployments/gpt-4o-prod',
    );
  });

  it('ignores trailing slashes on the endpoint', () => {
    expect(azureBaseUrl('https://contoso.openai.azure.com///', 'd')).toBe(
      'https://contoso.openai.azure.com/openai/deployments/d',
    );
  });

  it('uses a deployment URL as it is (the deployment in it wins over --model)', () => {
    for (const url of [
      'https://contoso.openai.azure.com/openai/deployments/other',
      'https://contoso.openai.azure.com/openai/deployments/other/',
    ]) {
      expect(azureBaseUrl(url, 'mydeploy')).toBe(
        'https://contoso.openai.azure.com/openai/deployments/other',
      );
    }
  });

  it('uses the v1 API URL as it is', () => {
    expect(azureBaseUrl('https://contoso.openai.azure.com/openai/v1/', 'mydeploy')).toBe(
      'https://contoso.openai.azure.com/openai/v1',
    );
  });

  it('encodes a deployment name that is not URL-safe', () => {
    expect(azureBaseUrl('http://127.0.0.1:9', 'my deploy/x')).toBe(
      'http://127.0.0.1:9/openai/deployments/my%20deploy%2Fx',
    );
  });

  it('keeps a path prefix (a gateway in front of Azure)', () => {
    expect(azureBaseUrl('https://gw.example.com/azure', 'd')).toBe(
      'https://gw.example.com/azure/openai/deployments/d',
    );
  });
});

describe('keyRefusal: a key variable named after a vendor goes only to that vendor', () => {
  const refusal = (
    name: string,
    url: string,
    env: Record<string, string> = {},
    provider: ProviderName = 'maxtoken',
  ) => keyRefusal(name, url, provider, env);

  const cases: [string, string[], string[], string][] = [
    [
      'MAXTOKEN_API_KEY',
      ['https://api.maxtoken.io/v1', 'https://API.MAXTOKEN.IO./v1'],
      [
        'https://proxy.example.com/v1',
        'http://127.0.0.1:8000/v1',
        'https://api.maxtoken.io.evil.example/v1',
        'https://maxtoken.io/v1',
        'https://xapi.maxtoken.io/v1',
      ],
      '$MAXTOKEN_API_KEY is only sent to api.maxtoken.io',
    ],
    [
      'OPENAI_API_KEY',
      ['https://api.openai.com/v1'],
      ['https://api.maxtoken.io/v1', 'https://openai.com/v1', 'http://localhost:11434/v1'],
      '$OPENAI_API_KEY is only sent to api.openai.com or the base URL in $OPENAI_BASE_URL',
    ],
    [
      'OPENROUTER_API_KEY',
      ['https://openrouter.ai/api/v1'],
      ['https://api.openai.com/v1', 'https://openrouter.ai.example/api/v1'],
      '$OPENROUTER_API_KEY is only sent to openrouter.ai',
    ],
    [
      'AZURE_OPENAI_API_KEY',
      [
        'https://contoso.openai.azure.com/openai/deployments/d',
        'https://contoso.cognitiveservices.azure.com/openai/deployments/d',
        'https://contoso.services.ai.azure.com/openai/v1',
      ],
      [
        'https://evilopenai.azure.com/openai/deployments/d',
        'https://contoso.openai.azure.com.evil.example/openai/deployments/d',
        'https://api.openai.com/v1',
      ],
      '$AZURE_OPENAI_API_KEY is only sent to *.openai.azure.com, *.cognitiveservices.azure.com, *.services.ai.azure.com or the host in $AZURE_OPENAI_ENDPOINT',
    ],
    [
      'GEMINI_API_KEY',
      ['https://generativelanguage.googleapis.com/v1beta/openai'],
      ['https://googleapis.com/v1', 'https://api.openai.com/v1'],
      '$GEMINI_API_KEY is only sent to generativelanguage.googleapis.com',
    ],
    [
      'GOOGLE_API_KEY',
      ['https://generativelanguage.googleapis.com/v1beta/openai'],
      ['https://evil.example/v1beta/openai'],
      '$GOOGLE_API_KEY is only sent to generativelanguage.googleapis.com',
    ],
  ];

  it.each(cases)('%s', (name, allowed, refused, why) => {
    for (const url of allowed) expect(refusal(name, url), url).toBeUndefined();
    for (const url of refused) expect(refusal(name, url), url).toBe(why);
  });

  it('OPENAI_API_KEY also goes to OPENAI_BASE_URL when that is the base URL in use', () => {
    const env = { OPENAI_BASE_URL: 'https://gateway.example.com/openai/v1/' };
    expect(refusal('OPENAI_API_KEY', 'https://gateway.example.com/openai/v1', env)).toBeUndefined();
    expect(refusal('OPENAI_API_KEY', 'https://gateway.example.com:443/openai/v1/', env)).toBe(
      undefined,
    );
    // The same host with another path, or another scheme, is another base URL.
    for (const url of [
      'https://gateway.example.com/other/v1',
      'http://gateway.example.com/openai/v1',
      'https://gateway.example.com:8443/openai/v1',
    ]) {
      expect(refusal('OPENAI_API_KEY', url, env), url).toMatch(/is only sent to/);
    }
  });

  it('AZURE_OPENAI_API_KEY also goes to the host of AZURE_OPENAI_ENDPOINT (its port too)', () => {
    const env = { AZURE_OPENAI_ENDPOINT: 'http://127.0.0.1:9000' };
    expect(
      refusal('AZURE_OPENAI_API_KEY', 'http://127.0.0.1:9000/openai/deployments/d', env),
    ).toBeUndefined();
    expect(
      refusal('AZURE_OPENAI_API_KEY', 'http://127.0.0.1:9001/openai/deployments/d', env),
    ).toMatch(/is only sent to/);
    expect(
      refusal('AZURE_OPENAI_API_KEY', 'http://127.0.0.1:9000/x', { AZURE_OPENAI_ENDPOINT: ' ' }),
    ).toMatch(/is only sent to/);
  });

  it("a local server's variable goes to its provider's base URL, wherever it is, and only there", () => {
    for (const [name, provider] of [
      ['OLLAMA_API_KEY', 'ollama'],
      ['LMSTUDIO_API_KEY', 'lmstudio'],
      ['VLLM_API_KEY', 'vllm'],
      ['LLAMA_API_KEY', 'llamacpp'],
    ] as const) {
      for (const url of ['http://localhost:8000/v1', 'https://gpu-box.example.com/v1']) {
        expect(refusal(name, url, {}, provider), `${name} ${url}`).toBeUndefined();
      }
      expect(refusal(name, 'http://localhost:8000/v1', {}, 'maxtoken')).toBe(
        `$${name} is only sent with --provider ${provider}`,
      );
    }
  });

  it("the tool's own variables (and any name it does not know) go to the configured base URL", () => {
    for (const name of ['DESCRIBE_IMAGE_API_KEY', 'MY_OWN_KEY']) {
      expect(refusal(name, 'https://anywhere.example.com/v1')).toBeUndefined();
    }
  });

  it('nothing goes to a base URL that is not a URL', () => {
    expect(refusal('MAXTOKEN_API_KEY', 'api.maxtoken.io/v1')).toMatch(/is only sent to/);
  });
});

describe('azureDeployment', () => {
  it('names the deployment of a deployment URL', () => {
    expect(azureDeployment('https://r.openai.azure.com/openai/deployments/gpt-4o-prod')).toBe(
      'gpt-4o-prod',
    );
    expect(azureDeployment('http://127.0.0.1:9/openai/deployments/my%20dep/')).toBe('my dep');
  });

  it('a resource endpoint or the v1 URL names none', () => {
    expect(azureDeployment('https://r.openai.azure.com')).toBeUndefined();
    expect(azureDeployment('https://r.openai.azure.com/openai/v1')).toBeUndefined();
    expect(azureDeployment('https://r.openai.azure.com/openai/deployments/')).toBeUndefined();
  });
});
