/**
 * The provider table: what each provider needs and which of its quirks the tool adapts to,
 * and Azure's base URL built from a resource endpoint and a deployment.
 */
import { describe, expect, it } from 'vitest';
import { isLoopback } from '../src/config.js';
import {
  AZURE_API_VERSION,
  azureBaseUrl,
  isProviderName,
  PROVIDER_NAMES,
  PROVIDERS,
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

  it('OPENAI_API_KEY and OPENAI_BASE_URL belong to maxtoken and openai only', () => {
    for (const name of PROVIDER_NAMES) {
      const own = name === 'maxtoken' || name === 'openai';
      expect(PROVIDERS[name].keyVariables.includes('OPENAI_API_KEY'), name).toBe(own);
      expect(PROVIDERS[name].baseUrlVariables.includes('OPENAI_BASE_URL'), name).toBe(own);
    }
  });

  it('no two providers share a key variable, except OPENAI_API_KEY (maxtoken, openai)', () => {
    const seen = new Map<string, string>();
    for (const name of PROVIDER_NAMES) {
      for (const variable of PROVIDERS[name].keyVariables) {
        if (variable === 'OPENAI_API_KEY') continue;
        expect(seen.get(variable), `${variable} in ${name}`).toBeUndefined();
        seen.set(variable, name);
      }
    }
  });

  it('each provider reads its documented key variables', () => {
    expect(PROVIDERS.maxtoken.keyVariables).toEqual(['MAXTOKEN_API_KEY', 'OPENAI_API_KEY']);
    expect(PROVIDERS.openai.keyVariables).toEqual(['OPENAI_API_KEY']);
    expect(PROVIDERS.openrouter.keyVariables).toEqual(['OPENROUTER_API_KEY']);
    expect(PROVIDERS.azure.keyVariables).toEqual(['AZURE_OPENAI_API_KEY']);
    expect(PROVIDERS.gemini.keyVariables).toEqual(['GEMINI_API_KEY', 'GOOGLE_API_KEY']);
    expect(PROVIDERS.vllm.keyVariables).toEqual(['VLLM_API_KEY']);
    expect(PROVIDERS.llamacpp.keyVariables).toEqual(['LLAMA_API_KEY']);
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
