/**
 * The command line: options, checks, settings resolution and dispatch. The only module that
 * uses commander. `run()` returns the exit code; it never exits the process.
 */
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ImageDetail } from './api/types.js';
import type { Job, WriteBack } from './commands/job.js';
import { checkOutputPairs } from './commands/output-pairs.js';
import {
  DEFAULT_BASE_URL,
  DEFAULT_MODEL,
  DEFAULT_PROMPT,
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_S,
  SettingsError,
  isLoopback,
  knownSecrets,
  missingKeyMessage,
  parseBaseUrl,
  resolveSettings,
  type Settings,
} from './config.js';
import type { Deps } from './deps.js';
import { batchApiMode, type BatchApiMode } from './batch-api/mode.js';
import {
  DescribeImageError,
  ExitCode,
  InterruptedError,
  MissingKeyError,
  UsageError,
  exitCodeFor,
} from './errors.js';
import { writeBackSource } from './metadata/content.js';
import { displayUrl } from './output/guard.js';
import { parseAge } from './cache/age.js';
import { cacheDirOf } from './cache/location.js';
import { PRESETS, PRESET_NAMES } from './presets.js';
import { PROVIDER_NAMES, PROVIDERS } from './providers.js';
import type { CompletionOption } from './render/completion.js';
import { painterFor } from './ui/colors.js';
import { guardStream, neutralize, Redactor } from './output/guard.js';
import { Reporter } from './ui/reporter.js';
import { VERSION } from './version.js';

/** Options as commander parses them. */
export interface CliOptions {
  prompt?: string;
  model?: string;
  system?: string;
  maxTokens?: number;
  maxCompletionTokens?: number;
  temperature?: number;
  detail?: ImageDetail;
  together?: boolean;
  schema?: string;
  preset?: string;
  stream: boolean;
  json?: boolean;
  quiet?: boolean;
  baseUrl?: string;
  apiKeyFile?: string;
  provider?: string;
  profile?: string;
  apiVersion?: string;
  timeout?: number;
  retries?: number;
  maxWait?: number;
  concurrency?: number;
  rpm?: number;
  filesFrom?: string;
  output?: string;
  resume?: boolean;
  sidecar?: boolean;
  skipExisting?: boolean;
  maxSize?: number;
  keepMetadata?: boolean;
  original?: boolean;
  /** true: --download, false: --no-download, undefined: as the provider needs. */
  download?: boolean;
  dryRun?: boolean;
  writeMetadata?: boolean;
  xmpSidecar?: boolean;
  xmpName?: (typeof XMP_NAMES)[number];
  updateMtime?: boolean;
  backup?: boolean;
  saveKey?: boolean;
  /** false for --no-cache (commander's default is true). */
  cache: boolean;
  refresh?: boolean;
  cacheOnly?: boolean;
  cacheDir?: string;
  cacheStats?: boolean;
  cachePrune?: number;
  cacheClear?: boolean;
  printConfig?: boolean;
  completion?: 'bash' | 'zsh' | 'fish';
  debug?: boolean;
  batchApi?: boolean;
  wait?: boolean;
  jobs?: boolean;
  job?: string;
  cancel?: boolean;
  retryFailed?: boolean;
  batchFile?: string;
  batchResults?: string[];
  batchMaxBytes?: number;
  batchMaxRequests?: number;
  altCheck?: boolean;
  altFill?: boolean;
  root?: string;
  altPlaceholders?: boolean;
}

/** `--xmp-name`: the two ways photo managers name a sidecar (photo.jpg → …). */
const XMP_NAMES = ['photo.jpg.xmp', 'photo.xmp'] as const;

function integer(min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min) {
      throw new InvalidArgumentError(
        `expected a whole number${min > 0 ? ` of at least ${min}` : ' (0 or more)'}`,
      );
    }
    return Number(value);
  };
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError('expected a number of seconds greater than 0');
  }
  return n;
}

function age(value: string): number {
  const ms = parseAge(value);
  if (ms === undefined) throw new InvalidArgumentError('give an age like 30d, 12h or 90m');
  return ms;
}

function temperature(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 2) {
    throw new InvalidArgumentError('expected a number from 0 to 2');
  }
  return n;
}

/** A fresh program whose output goes to `deps`, and which throws instead of exiting. */
export function createProgram(
  deps: Deps,
  onRun: (inputs: string[], opts: CliOptions) => void,
): Command {
  const program = new Command('describe-image');
  program
    .usage(
      '[options] <image...> [prompt]\n       describe-image --alt-check|--alt-fill [options] <document...>',
    )
    .description(
      'Ask a vision model what is in an image. Images are files, http(s) URLs, data: URLs, ' +
        '- (standard input), quoted globs or directories. The last argument is the prompt ' +
        `when it is not an image (default: "${DEFAULT_PROMPT}"). With --alt-check or ` +
        '--alt-fill, the arguments are Markdown, MDX or HTML documents instead.',
    )
    .argument(
      '[inputs...]',
      'images, then an optional prompt (documents with --alt-check or --alt-fill)',
    )
    .helpOption('-h, --help', 'show this help')
    .version(VERSION, '-V, --version', 'print the version')
    .optionsGroup('Request:')
    .option('-p, --prompt <text>', 'the question to ask ("-" reads it from standard input)')
    .option(
      '-m, --model <id>',
      `model to use (default: ${DEFAULT_MODEL}, or $DESCRIBE_IMAGE_MODEL)`,
    )
    .option('-s, --system <text>', 'system message')
    .addOption(
      new Option('--detail <level>', 'image detail level (sent as image_url.detail)').choices([
        'auto',
        'low',
        'high',
      ]),
    )
    .option('--max-tokens <n>', 'longest answer, in tokens (sent as max_tokens)', integer(1))
    .option(
      '--max-completion-tokens <n>',
      'longest answer for reasoning models (max_completion_tokens)',
      integer(1),
    )
    .option('--temperature <n>', 'sampling temperature, 0 to 2', temperature)
    .option('--together', 'send all images in one request (to compare them)')
    .optionsGroup('Structured answers:')
    .option(
      '--schema <file|json>',
      'answer as JSON matching this JSON Schema (a file, or inline JSON), checked locally',
    )
    .addOption(
      new Option('--preset <name>', 'a built-in prompt and schema (see Presets below)').choices(
        PRESET_NAMES,
      ),
    )
    .optionsGroup('Images:')
    .option(
      '--max-size <px>',
      'scale images so the long edge is at most this (instead of the size rule of the model)',
      integer(16),
    )
    .option(
      '--keep-metadata',
      'keep EXIF (GPS included), XMP and IPTC metadata; they are removed by default',
    )
    .option('--original', "send local images' bytes untouched (no resize, rotation or conversion)")
    .option(
      '--download',
      'fetch image URLs and send their bytes (for servers such as Ollama that cannot fetch URLs)',
    )
    .option(
      '--no-download',
      'send image URLs as they are even where the provider cannot fetch them',
    )
    .option(
      '--dry-run',
      'send nothing: print the request body and what each image would cost (no key needed)',
    )
    .optionsGroup('Output:')
    .option('--no-stream', 'wait for the whole answer instead of streaming it')
    .option('--json', 'print one JSON object per image (JSON Lines)')
    .option('-q, --quiet', 'no spinner, progress, usage or notices on stderr')
    .option(
      '--debug',
      'show requests, responses, timings and stack traces on stderr (never the key)',
    )
    .optionsGroup('Batch:')
    .option('-c, --concurrency <n>', 'requests in flight at once (default: 4)', integer(1))
    .option('--rpm <n>', 'at most this many requests per minute', integer(1))
    .option(
      '--files-from <file>',
      'read image paths or URLs from a file, one per line ("-": standard input)',
    )
    .option('-o, --output <file>', 'append JSON Lines results to a file instead of standard output')
    .option(
      '--resume',
      "with --output: skip images the file already holds an answer for (with write-back: also those whose metadata holds this preset's answer)",
    )
    .option('--sidecar', 'write each answer next to its image as NAME.txt (NAME.json with --json)')
    .option(
      '--skip-existing',
      "with --sidecar: skip images that already have one; with write-back, those whose metadata holds this preset's answer",
    )
    .optionsGroup('Write-back (needs Perl; see "Write-back" below):')
    .option(
      '--write-metadata',
      "write each answer into the photo's own metadata, where photo managers read it",
    )
    .option(
      '--xmp-sidecar',
      'write each answer into an XMP sidecar beside the photo instead of into the photo (not the .txt of --sidecar)',
    )
    .addOption(
      new Option(
        '--xmp-name <name>',
        'with --xmp-sidecar: name the sidecar of photo.jpg photo.jpg.xmp, as digiKam, darktable and Immich do (the default), or photo.xmp, as Lightroom and Capture One do',
      ).choices(XMP_NAMES),
    )
    .option(
      '--update-mtime',
      'give each photo written a new modification time (by default it keeps its own, so backup tools and photo managers do not see it as new)',
    )
    .option(
      '--backup',
      'keep each photo as it was before, as photo.jpg_original (by default no copy is left)',
    )
    .optionsGroup('Batch API:')
    .option('--batch-api', "submit the images to the provider's batch engine; print the job id")
    .option('--wait', 'with --batch-api or --job: wait for the job, then write its results')
    .option('--jobs', 'list the batch jobs: status, counts, age, cost so far')
    .option('--job <id>', "a batch job's status; with --wait, --cancel or --retry-failed")
    .option('--cancel', 'with --job: cancel the job (finished answers are kept)')
    .option(
      '--retry-failed',
      'with --job: submit again the images that failed, expired or were cancelled',
    )
    .option(
      '--batch-file <path>',
      'write the batch requests as JSON Lines (and a .map.jsonl beside them) and send nothing: for vllm run-batch',
    )
    .option(
      '--batch-results <file...>',
      "write the results in batch output files (vllm run-batch's, or OpenAI's) like any batch's",
    )
    .option(
      '--batch-max-bytes <n>',
      "largest batch input file, in bytes (default: the provider's, 200000000 for OpenAI)",
      integer(1),
    )
    .option(
      '--batch-max-requests <n>',
      "most requests in one batch input file (default: the provider's, 50000 for OpenAI)",
      integer(1),
    )
    .optionsGroup('Documents (alt text in Markdown, MDX and HTML):')
    .option(
      '--alt-check',
      'list the images without alt text in the documents given (FILE:LINE:COL); exit 1 if any (no key needed)',
    )
    .option(
      '--alt-fill',
      'describe each image without alt text and write the text into its document, changing nothing else (--dry-run: print the diff)',
    )
    .option('--root <dir>', 'with --alt-fill: where root-relative image sources (/img/x.png) are')
    .option(
      '--alt-placeholders',
      'with --alt-check or --alt-fill: also count alt texts that only name the file ("logo" for logo.png) or say "image"',
    )
    .optionsGroup('Connection:')
    .addOption(
      new Option(
        '--provider <name>',
        'an OpenAI-compatible provider: its base URL, key variable and quirks (default: maxtoken; openai when $OPENAI_API_KEY is the only key)',
      ).choices(PROVIDER_NAMES),
    )
    .option('--profile <name>', 'use a profile from the config file (or $DESCRIBE_IMAGE_PROFILE)')
    .option(
      '--base-url <url>',
      `API base URL (default: the provider's, ${DEFAULT_BASE_URL}; or $DESCRIBE_IMAGE_BASE_URL)`,
    )
    .option(
      '--api-key-file <path>',
      "read the API key from a file (default: $DESCRIBE_IMAGE_API_KEY, then the provider's variable such as $MAXTOKEN_API_KEY, which is sent only to its vendor)",
    )
    .option(
      '--api-version <version>',
      `Azure OpenAI's api-version (default: ${PROVIDERS.azure.apiVersion?.default ?? ''})`,
    )
    .option(
      '--timeout <seconds>',
      `longest wait for the server to answer or send more (default: ${DEFAULT_TIMEOUT_S})`,
      positiveNumber,
    )
    .option(
      '--retries <n>',
      `retries after a rate limit, server error or network failure (default: ${DEFAULT_RETRIES})`,
      integer(0),
    )
    .option(
      '--max-wait <seconds>',
      'longest wait a server may ask for (Retry-After) that is waited out; longer stops with exit 5 (default: 60, or 600 for a batch)',
      positiveNumber,
    )
    .optionsGroup('Answer cache:')
    .option('--no-cache', 'neither look answers up in the cache nor store them')
    .option('--refresh', 'ask again even when the answer is in the cache, and store the new one')
    .option(
      '--cache-only',
      'never ask: answer from the cache only; an image with no stored answer fails (exit 8)',
    )
    .option('--cache-dir <dir>', 'where the cache lives (default: $XDG_CACHE_HOME/describe-image)')
    .option('--cache-stats', 'show where the cache is, how many answers it holds and its size')
    .option('--cache-prune <age>', 'remove answers asked longer ago than AGE (30d, 12h, 90m)', age)
    .option('--cache-clear', 'remove every stored answer')
    .optionsGroup('Setup:')
    .option(
      '--save-key',
      'ask for an API key and store it in the config file (mode 0600); with --profile, in that profile',
    )
    .option(
      '--print-config',
      'show the settings in effect and where each comes from (the key redacted)',
    )
    .addOption(
      new Option('--completion <shell>', 'print a shell completion script').choices([
        'bash',
        'zsh',
        'fish',
      ]),
    )
    .addHelpText(
      'after',
      [
        '',
        'Presets (--preset NAME):',
        ...PRESETS.map((p) => `  ${p.name.padEnd(10)} ${p.description}`),
        '',
        'Write-back (--write-metadata, --xmp-sidecar): what each answer becomes:',
        '  a plain prompt,  the description: XMP dc:description (other languages kept),',
        '  caption, ocr     EXIF ImageDescription, IPTC Caption-Abstract (where the',
        '                   photo has IPTC)',
        '  alt-text         the alt text (XMP Iptc4xmpCore:AltTextAccessibility), and the',
        '                   description when the photo has none',
        '  tags, objects    keywords, added to XMP dc:subject, IPTC Keywords,',
        '                   lr:hierarchicalSubject and digiKam:TagsList (those there are',
        '                   kept; none is added twice)',
        '  --schema         refused: nothing says which property is a caption',
        'Writes are atomic (a temporary file, then a rename) and never re-encode the',
        'picture. Photos keep their modification time (--update-mtime gives a new one);',
        'no copy is left unless --backup.',
        '',
        'Examples:',
        '  describe-image cat.png',
        '  describe-image cat.png "What breed is this cat?"',
        '  curl -s https://example.com/a.jpg | describe-image - "Describe it in one line"',
        "  describe-image 'photos/**/*.jpg' --json -o captions.jsonl --resume",
        '  describe-image --preset tags photo.jpg',
        '  describe-image photos/ --preset caption --write-metadata --skip-existing',
        '  describe-image --provider ollama -m llava photo.jpg',
        '  describe-image photos/ --preset alt-text --batch-api --wait -o alt.jsonl',
        "  describe-image --alt-check 'docs/**/*.md' site/index.html",
        '  describe-image --alt-fill README.md --dry-run',
        '',
        'Exit codes: 0 ok, 1 images without alt text (--alt-check), 2 usage, 3 input, 4 auth,',
        '5 rate limit/quota, 6 request rejected, 7 server or network failure,',
        '8 not in the cache (--cache-only), 70 internal error,',
        '130 interrupted.',
      ].join('\n'),
    )
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => deps.stdout.write(text),
      writeErr: (text) => deps.stderr.write(text),
      // Commander quotes the arguments it rejects: they are the user's, not the tool's.
      outputError: (text, write) => write(`describe-image: ${neutralize(text)}`),
    })
    .action((inputs: string[], opts: CliOptions) => onRun(inputs, opts));
  return program;
}

/** The options' names and values, for completion scripts. */
function completionOptions(program: Command): CompletionOption[] {
  const help = {
    flags: ['-h', '--help'],
    description: 'show this help',
    takesValue: false,
    choices: undefined,
    valueName: undefined,
  };
  return [
    help,
    ...program.options.map((o) => ({
      flags: [o.short, o.long].filter((f): f is string => Boolean(f)),
      description: o.description,
      takesValue: o.required || o.optional,
      choices: o.argChoices,
      valueName: /<([^>]+)>/.exec(o.flags)?.[1],
    })),
  ];
}

/**
 * Parses `argv` (without node and the script) and runs. Returns the exit code.
 *
 * Everything the run writes goes through the output layer (output/guard.ts): standard output
 * and standard error are wrapped here, before any other code sees them, so no call site can
 * write a secret; the reporter neutralises what it is given; files are written through writers
 * that take the run's redactor.
 */
export async function run(argv: readonly string[], outside: Deps): Promise<number> {
  const redactor = new Redactor();
  const stdout = guardStream(outside.stdout, redactor);
  const stderr = guardStream(outside.stderr, redactor);
  const deps: Deps = {
    stdout,
    stderr,
    // Lazy, as main.ts made it: touching stdin opens it.
    get stdin() {
      return outside.stdin;
    },
    env: outside.env,
    cwd: outside.cwd,
    homedir: outside.homedir,
    interrupt: outside.interrupt,
    now: () => outside.now(),
  };
  try {
    return await runGuarded(argv, deps, redactor);
  } finally {
    stdout.flush();
    stderr.flush();
  }
}

async function runGuarded(
  argv: readonly string[],
  deps: Deps,
  redactor: Redactor,
): Promise<number> {
  let parsed: { inputs: string[]; opts: CliOptions } | undefined;
  const program = createProgram(deps, (inputs, opts) => {
    parsed = { inputs, opts };
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(error.code)) {
        return ExitCode.OK;
      }
      return ExitCode.USAGE;
    }
    throw error;
  }
  if (!parsed) return ExitCode.OK;

  const { opts } = parsed;
  const reporter = new Reporter(deps.stderr, {
    painter: await painterFor({
      env: deps.env,
      isTTY: Boolean(deps.stderr.isTTY),
      quiet: Boolean(opts.quiet),
    }),
    quiet: Boolean(opts.quiet),
    debug: Boolean(opts.debug),
    redactor,
  });
  try {
    if (opts.completion) {
      const { completionScript } = await import('./render/completion.js');
      deps.stdout.write(completionScript(opts.completion, completionOptions(program)));
      return ExitCode.OK;
    }
    const cacheDir = cacheDirOf(opts.cacheDir, deps.env, deps.homedir, deps.cwd);
    if (opts.cacheStats || opts.cachePrune !== undefined || opts.cacheClear) {
      if (parsed.inputs.length > 0)
        throw new UsageError('--cache-stats, --cache-prune and --cache-clear take no images');
      const { cacheCommand } = await import('./commands/cache-admin.js');
      return await cacheCommand(cacheDir.value, opts, {
        deps,
        reporter,
        redactor: reporter.redactor,
      });
    }
    checkAltOptions(opts, parsed.inputs);
    if (opts.altCheck) {
      // No key, no config, no network: only the documents.
      const { runAltCheck } = await import('./commands/alt.js');
      return await runAltCheck(
        {
          documents: parsed.inputs,
          placeholders: Boolean(opts.altPlaceholders),
          json: Boolean(opts.json),
        },
        { deps, reporter, redactor: reporter.redactor },
      );
    }
    // A run that asks about images needs these next; fetched together with the config file's
    // module rather than one after another (the cache's store loads lmdb only when opened).
    if (!opts.saveKey && !opts.printConfig && !opts.altFill) void prefetchDescribe(opts);
    const { configPath, loadConfig } = await import('./config-file.js');
    const file = configPath(deps.env, deps.homedir);
    if (opts.saveKey) {
      if (parsed.inputs.length > 0) throw new UsageError('--save-key takes no images');
      const { saveKeyCommand } = await import('./commands/setup.js');
      return await saveKeyCommand(file, opts.profile, {
        deps,
        reporter,
        redactor: reporter.redactor,
      });
    }
    // Impossible combinations of the batch-engine options are usage errors before anything else.
    const batchMode = batchApiMode(opts, parsed.inputs.length > 0);
    const loaded = await loadConfig(file).catch(settingsToUsage);
    for (const warning of loaded.warnings) reporter.warn(warning);
    const settings = await resolve(opts, deps, loaded.config);
    for (const secret of knownSecrets(settings, deps.env, loaded.config))
      reporter.redactor.add(secret);
    for (const notice of settings.notices) reporter.notice(notice);
    if (opts.printConfig) {
      const { printConfig } = await import('./commands/setup.js');
      return printConfig(settings, loaded, Boolean(opts.json), cacheDir, {
        deps,
        reporter,
        redactor: reporter.redactor,
      });
    }
    if (opts.altFill) {
      // Every argument is a document: none is an image, and none is the prompt.
      const job = await buildJob([], opts, settings, deps, reporter, cacheDir.value);
      const { runAltFill } = await import('./commands/alt-fill.js');
      return await runAltFill(
        job,
        { deps, reporter, redactor: reporter.redactor },
        {
          documents: parsed.inputs,
          root: opts.root,
          placeholders: Boolean(opts.altPlaceholders),
          // -p's words (read from stdin with "-p -"), added to each image's own prompt.
          prompt: opts.prompt === undefined ? undefined : job.prompt,
        },
      );
    }
    const job = await buildJob(
      parsed.inputs,
      opts,
      settings,
      deps,
      reporter,
      cacheDir.value,
      batchMode,
    );
    if (batchMode) {
      if (opts.concurrency !== undefined || opts.rpm !== undefined)
        reporter.warn(
          '-c and --rpm do not apply to a batch engine, which runs the requests itself',
        );
      const { batchApi } = await import('./commands/batch-api.js');
      return await batchApi(
        job,
        batchMode,
        {
          maxBytes: opts.batchMaxBytes,
          maxRequests: opts.batchMaxRequests,
          given: {
            output: opts.output,
            json: opts.json,
            sidecar: opts.sidecar,
            resume: opts.resume,
            skipExisting: opts.skipExisting,
            writeBack: job.writeBack,
          },
        },
        { deps, reporter, redactor: reporter.redactor },
      );
    }
    const { describe } = await import('./commands/describe.js');
    return await describe(job, { deps, reporter, redactor: reporter.redactor });
  } catch (error) {
    return report(error, reporter);
  }
}

/** Options that mean nothing for documents: a usage error with --alt-check or --alt-fill. */
const NOT_WITH_DOCUMENTS: [keyof CliOptions, string][] = [
  ['together', '--together'],
  ['sidecar', '--sidecar'],
  ['skipExisting', '--skip-existing'],
  ['schema', '--schema'],
  ['preset', '--preset'],
  ['resume', '--resume'],
  ['filesFrom', '--files-from'],
  ['saveKey', '--save-key'],
  ['printConfig', '--print-config'],
  ['batchApi', '--batch-api'],
  ['batchFile', '--batch-file'],
  ['batchResults', '--batch-results'],
  ['jobs', '--jobs'],
  ['job', '--job'],
  ['wait', '--wait'],
  ['cancel', '--cancel'],
  ['retryFailed', '--retry-failed'],
  ['batchMaxBytes', '--batch-max-bytes'],
  ['batchMaxRequests', '--batch-max-requests'],
];

/**
 * Usage errors of --alt-check and --alt-fill, before anything is read or sent: one mode at a
 * time, options that only a mode uses, and options a mode cannot honour.
 */
function checkAltOptions(opts: CliOptions, inputs: readonly string[]): void {
  const mode = opts.altCheck ? '--alt-check' : opts.altFill ? '--alt-fill' : undefined;
  if (opts.altCheck && opts.altFill)
    throw new UsageError('give --alt-check or --alt-fill, not both');
  if (!mode) {
    if (opts.root !== undefined) throw new UsageError('--root needs --alt-fill');
    if (opts.altPlaceholders)
      throw new UsageError('--alt-placeholders needs --alt-check or --alt-fill');
    return;
  }
  for (const [key, flag] of NOT_WITH_DOCUMENTS) {
    if (opts[key] !== undefined && opts[key] !== false)
      throw new UsageError(`${mode} works on documents; it cannot be combined with ${flag}`);
  }
  if (opts.altCheck) {
    if (opts.root !== undefined)
      throw new UsageError('--root is for --alt-fill (--alt-check does not look at the images)');
    if (opts.output !== undefined)
      throw new UsageError('--alt-check prints to standard output; redirect it instead of -o');
    if (opts.prompt !== undefined)
      throw new UsageError('--alt-check asks no model: it takes no prompt');
  }
  if (opts.altFill && opts.dryRun && (opts.json || opts.output !== undefined))
    throw new UsageError(
      '--alt-fill --dry-run prints a diff; it cannot be combined with --json or --output',
    );
  if (inputs.length === 0)
    throw new UsageError(
      `${mode} needs documents (Markdown, MDX or HTML files, globs or directories)`,
    );
}

function settingsToUsage(error: unknown): never {
  if (error instanceof SettingsError) throw new UsageError(error.message);
  throw error;
}

async function resolve(
  opts: CliOptions,
  deps: Deps,
  config: Parameters<typeof resolveSettings>[2],
): Promise<Settings> {
  let apiKeyFromFile: { value: string; path: string } | undefined;
  if (opts.apiKeyFile) {
    apiKeyFromFile = { value: await readKeyFile(opts.apiKeyFile, deps.cwd), path: opts.apiKeyFile };
  }
  try {
    return resolveSettings(
      {
        provider: opts.provider,
        profile: opts.profile,
        baseUrl: opts.baseUrl,
        model: opts.model,
        apiKeyFromFile,
        apiVersion: opts.apiVersion,
        detail: opts.detail,
        maxTokens: opts.maxTokens,
        cache: opts.cache ? undefined : false,
      },
      deps.env,
      config,
    );
  } catch (error) {
    return settingsToUsage(error);
  }
}

/** Prints a failure as one line (a stack only with --debug) and returns its exit code. */
function report(error: unknown, reporter: Reporter): number {
  const code = exitCodeFor(error);
  if (error instanceof InterruptedError) {
    reporter.line([{ text: 'interrupted', style: 'yellow' }]);
  } else if (error instanceof DescribeImageError) {
    reporter.error(error.message);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    reporter.error(
      `unexpected internal error: ${message}${reporter.debugging ? '' : ' (run with --debug for details)'}`,
    );
  }
  if (reporter.debugging && error instanceof Error && error.stack) reporter.debug(error.stack);
  return code;
}

/**
 * Whether the last argument names an image (so it is not the prompt). A glob that could as
 * well be a prompt ('My Photos/*.jpg', "What is this?") is one only if it matches a file.
 */
async function isImageArgument(arg: string, cwd: string): Promise<boolean> {
  const { couldBePrompt, isGlobPattern, matchesAnyFile, pathKind } =
    await import('./input/expand.js');
  const { isUrlArg, looksLikeImagePath } = await import('./input/images.js');
  if (arg === '-' || isUrlArg(arg)) return true;
  if ((await pathKind(arg, cwd)) !== 'missing') return true;
  if (isGlobPattern(arg)) return !couldBePrompt(arg) || (await matchesAnyFile(arg, cwd));
  return looksLikeImagePath(arg);
}

async function buildJob(
  inputs: string[],
  opts: CliOptions,
  settings: Settings,
  deps: Deps,
  reporter: Reporter,
  cacheDir: string,
  batchMode?: BatchApiMode,
): Promise<Job> {
  // A job, --jobs and --batch-results name their images themselves; offline modes need no key.
  const imagesGiven = !batchMode || batchMode.kind === 'submit' || batchMode.kind === 'file';
  const offline =
    batchMode?.kind === 'file' || batchMode?.kind === 'results' || batchMode?.kind === 'jobs';
  // Checks that need no I/O come first.
  const writeBack = writeBackOf(opts);
  // A job's output options may come from its record: checked once merged (commands/batch-job.ts).
  if (imagesGiven) {
    checkOutputPairs({
      resume: opts.resume,
      output: opts.output,
      skipExisting: opts.skipExisting,
      sidecar: opts.sidecar,
      writeBack,
    });
  }
  if (opts.together && (opts.sidecar || opts.filesFrom)) {
    throw new UsageError(
      '--together sends one request for all images; it cannot be used with --sidecar or --files-from',
    );
  }
  if (opts.original && opts.maxSize !== undefined) {
    throw new UsageError(
      '--original sends images untouched; it cannot be combined with --max-size',
    );
  }
  if (opts.maxTokens !== undefined && opts.maxCompletionTokens !== undefined) {
    throw new UsageError('give --max-tokens or --max-completion-tokens, not both');
  }
  const cacheModes = [
    !opts.cache && '--no-cache',
    opts.refresh && '--refresh',
    opts.cacheOnly && '--cache-only',
  ].filter(Boolean);
  if (cacheModes.length > 1) throw new UsageError(`give one of ${cacheModes.join(', ')}, not both`);
  if (opts.schema !== undefined && opts.preset !== undefined) {
    throw new UsageError('give --schema or --preset, not both');
  }

  // The prompt: -p, else the last argument when it is not an image.
  const images = [...inputs];
  let prompt = opts.prompt;
  if (prompt === undefined && images.length > 0) {
    const last = images[images.length - 1] as string;
    if (!(await isImageArgument(last, deps.cwd))) {
      images.pop();
      prompt = last;
    }
  }
  if (prompt === '-') {
    if (images.includes('-'))
      throw new UsageError('standard input cannot hold both the image and the prompt ("-p -")');
    const { readStdinText } = await import('./input/images.js');
    prompt = (await readStdinText(deps.stdin)).trim();
    if (prompt === '') throw new UsageError('the prompt read from standard input is empty');
  }
  if (images.length === 0 && !opts.filesFrom && !opts.altFill && imagesGiven) {
    throw new UsageError(
      prompt !== undefined && inputs.length > 0
        ? `no image given (${JSON.stringify(prompt)} is not a file, URL or "-"); run describe-image --help`
        : 'no image given; run describe-image --help',
    );
  }
  if (prompt !== undefined && prompt.trim() === '') throw new UsageError('the prompt is empty');

  const structured =
    opts.schema !== undefined || opts.preset !== undefined
      ? await (await import('./commands/structured.js')).loadStructuredSpec(opts, deps.cwd)
      : undefined;
  // A preset brings its own prompt; the user's prompt, if any, is added to it.
  const fullPrompt = structured?.preset
    ? prompt
      ? `${structured.preset.prompt}\n\n${prompt}`
      : structured.preset.prompt
    : (prompt ?? DEFAULT_PROMPT);

  // Where to send it, and the key.
  const provider = PROVIDERS[settings.provider.value];
  const baseUrl = parseBaseUrl(settings.baseUrl.value);
  if (typeof baseUrl === 'string')
    throw new UsageError(`${baseUrl} (from ${settings.baseUrl.source})`);
  const local = isLoopback(baseUrl);
  const apiKey = settings.apiKey?.value;
  if (!apiKey && !local && provider.needsKey && !opts.dryRun && !offline) {
    throw new MissingKeyError(missingKeyMessage(settings, deps.env));
  }
  if (apiKey && baseUrl.protocol === 'http:' && !local) {
    reporter.warn(
      `the API key will be sent unencrypted to ${baseUrl.host} over plain http://; use https:// if the server supports it`,
    );
  }
  reporter.debug(
    `provider ${provider.name} (${settings.provider.source}); base URL ${displayUrl(baseUrl)} (${settings.baseUrl.source}); ` +
      `model ${settings.model ? `${settings.model.value} (${settings.model.source})` : 'asked of the server'}; ` +
      `key ${settings.apiKey ? `from ${settings.apiKey.source}, sent to ${baseUrl.host}` : 'none'}` +
      (settings.keysNotSent.length > 0 ? ` (not sent: ${settings.keysNotSent.join('; ')})` : '') +
      (settings.profile ? `; profile ${settings.profile.value} (${settings.profile.source})` : ''),
  );

  const json = Boolean(opts.json);
  return {
    inputs: images,
    prompt: fullPrompt,
    system: opts.system,
    model: settings.model?.value,
    detail: settings.detail?.value,
    // A config file's maxTokens gives way to --max-completion-tokens (reasoning models take one).
    maxTokens: opts.maxCompletionTokens === undefined ? settings.maxTokens?.value : undefined,
    maxCompletionTokens: opts.maxCompletionTokens,
    temperature: opts.temperature,
    stream: opts.stream && !json,
    json,
    quiet: Boolean(opts.quiet),
    debug: Boolean(opts.debug),
    together: Boolean(opts.together),
    timeoutMs: (opts.timeout ?? DEFAULT_TIMEOUT_S) * 1000,
    retries: opts.retries ?? DEFAULT_RETRIES,
    maxWaitMs: opts.maxWait === undefined ? undefined : opts.maxWait * 1000,
    concurrency: opts.concurrency ?? 4,
    rpm: opts.rpm,
    filesFrom: opts.filesFrom,
    output: opts.output,
    resume: Boolean(opts.resume),
    sidecar: Boolean(opts.sidecar),
    skipExisting: Boolean(opts.skipExisting),
    maxSize: opts.maxSize,
    keepMetadata: Boolean(opts.keepMetadata),
    original: Boolean(opts.original),
    download: opts.download ?? Boolean(provider.downloadUrls),
    dryRun: Boolean(opts.dryRun),
    writeBack,
    structured,
    // The config file (or a profile) can turn the cache off; a flag always wins.
    cache: opts.refresh
      ? 'refresh'
      : opts.cacheOnly
        ? 'only'
        : settings.cache?.value === false
          ? 'off'
          : 'use',
    cacheDir,
    prices: settings.prices,
    provider,
    api: {
      baseUrl: settings.baseUrl.value,
      apiKey,
      query: settings.apiVersion ? { 'api-version': settings.apiVersion.value } : {},
    },
  };
}

/**
 * Write-back's settings, or undefined without `--write-metadata` / `--xmp-sidecar`. Combinations
 * that cannot work are usage errors here, before any request.
 */
function writeBackOf(opts: CliOptions): WriteBack | undefined {
  const target = opts.xmpSidecar ? 'sidecar' : opts.writeMetadata ? 'embed' : undefined;
  const needs = (option: string): UsageError =>
    new UsageError(`${option} needs --write-metadata or --xmp-sidecar`);
  if (target === undefined) {
    if (opts.xmpName) throw new UsageError('--xmp-name needs --xmp-sidecar');
    if (opts.updateMtime) throw needs('--update-mtime');
    if (opts.backup) throw needs('--backup');
    return undefined;
  }
  if (opts.writeMetadata && opts.xmpSidecar) {
    throw new UsageError(
      'give --write-metadata (into the photo) or --xmp-sidecar (into a sidecar beside it), not both',
    );
  }
  const option = target === 'sidecar' ? '--xmp-sidecar' : '--write-metadata';
  if (opts.xmpName && target !== 'sidecar') throw new UsageError('--xmp-name needs --xmp-sidecar');
  if (target === 'sidecar' && (opts.updateMtime || opts.backup)) {
    throw new UsageError(
      `${opts.backup ? '--backup' : '--update-mtime'} is about the photo, which --xmp-sidecar leaves as it is`,
    );
  }
  if (opts.together) {
    throw new UsageError(
      `--together gives one answer for all the images; it cannot be used with ${option}`,
    );
  }
  const source = writeBackSource({ preset: opts.preset, schema: opts.schema !== undefined });
  if (!source.ok) throw new UsageError(source.problem.replace('--write-metadata', option));
  return {
    target,
    sidecarStyle: opts.xmpName === 'photo.xmp' ? 'replace' : 'append',
    keepMtime: !opts.updateMtime,
    backup: Boolean(opts.backup),
    source: source.source,
  };
}

async function readKeyFile(file: string, cwd: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(path.resolve(cwd, file), 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : 'cannot read it';
    throw new MissingKeyError(`--api-key-file ${file}: ${why}`);
  }
  const key = text.trim();
  if (key === '') throw new MissingKeyError(`--api-key-file ${file}: the file is empty`);
  if (/\s/.test(key))
    throw new MissingKeyError(`--api-key-file ${file}: expected one key on one line`);
  return key;
}

/** Starts loading the modules an image run goes on to import; a failure shows where used. */
function prefetchDescribe(opts: CliOptions): Promise<unknown> {
  return Promise.all([
    import('./input/expand.js'),
    import('./input/images.js'),
    import('./commands/describe.js'),
    opts.cache ? import('./cache/store.js') : undefined,
  ]).catch(() => undefined);
}
