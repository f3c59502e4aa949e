/**
 * A model's own prompt format from its chat template (the GGUF's `tokenizer.chat_template`, or one
 * given with `--chat-template`), rendered as llama-server renders it with `--jinja`
 * (common/chat.cpp): the user turn's content is the media marker followed by the text (content
 * parts joined without a newline after the marker), as a string unless the template only takes
 * typed content; `bos_token`/`eos_token` are the vocabulary's; a leading BOS text is dropped when
 * the vocabulary adds BOS itself; the generation prompt is on. The renderer is
 * `@huggingface/jinja`, the one node-llama-cpp uses for the same templates.
 */
import { Template } from '@huggingface/jinja';
import { SrfError } from '../errors.js';

/** Where the rendered prompt puts the image (mtmd's default marker; the engine swaps nothing). */
export const MEDIA_MARKER = '<__media__>';

/** llama.cpp's fallback when a model has no template (common/chat.cpp CHATML_TEMPLATE_SRC). */
export const CHATML_TEMPLATE = `{%- for message in messages -%}
  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|im_start|>assistant\n' -}}
{%- endif -%}`;

/** The vocabulary's facts a template renders with (from the loaded model). */
export interface TemplateTokens {
  bos: string;
  eos: string;
  /** The vocabulary adds BOS when tokenizing: a BOS the template writes is dropped. */
  addBos: boolean;
}

/** One piece of the prompt after the image: template text (special tokens parsed) or the user's text. */
export interface PromptTextPart {
  text: string;
  special: boolean;
}

/** A prompt split around its image: what the engine evaluates as the shared prefix, and what follows. */
export interface ChatPromptParts {
  beforeImage: string;
  afterImage: PromptTextPart[];
}

/** Stands in for the user's text when the template changes the text so that it cannot be found again. */
const USER_TEXT_PLACEHOLDER = '\u0000srf-user-text\u0000';

/** A compiled chat template. */
export class ChatTemplate {
  readonly #template: Template;
  readonly #tokens: TemplateTokens;
  readonly #typedContent: boolean;

  /** `origin` names where the source came from, for messages (a file, "the GGUF's tokenizer.chat_template"). */
  constructor(source: string, readonly origin: string, tokens: TemplateTokens) {
    try {
      this.#template = new Template(source);
    } catch (cause) {
      throw new SrfError('INVALID_ARGUMENT', `the chat template from ${origin} does not parse: ${(cause as Error).message}`, { cause });
    }
    this.#tokens = tokens;
    this.#typedContent = !this.#takesStringContent();
  }

  /** The whole prompt for one user turn, `<__media__>` where the image goes. */
  render(userContent: string): string {
    const content = this.#typedContent ? [{ type: 'text', text: userContent }] : userContent;
    let text: string;
    try {
      text = this.#template.render({
        messages: [{ role: 'user', content }],
        add_generation_prompt: true,
        bos_token: this.#tokens.bos,
        eos_token: this.#tokens.eos,
        enable_thinking: true,
      });
    } catch (cause) {
      throw new SrfError('INVALID_ARGUMENT', `the chat template from ${this.origin} failed to render a user turn: ${(cause as Error).message}`, { cause });
    }
    if (this.#tokens.addBos && this.#tokens.bos && text.startsWith(this.#tokens.bos)) text = text.slice(this.#tokens.bos.length);
    return text;
  }

  /** The prompt for an image followed by `userText`, split at the image, the user's text marked as such. */
  parts(userText: string): ChatPromptParts {
    let rendered = this.render(`${MEDIA_MARKER}${userText}`);
    let text = userText;
    let at = rendered.indexOf(MEDIA_MARKER);
    if (at < 0) throw new SrfError('INVALID_ARGUMENT', `the chat template from ${this.origin} drops the image marker from the user's turn`);
    let found = rendered.indexOf(text, at + MEDIA_MARKER.length);
    if (found < 0 && text.trim() !== text) {
      text = text.trim(); // templates that trim the content (Gemma 3's)
      found = rendered.indexOf(text, at + MEDIA_MARKER.length);
    }
    if (found < 0) {
      // The template rewrote the text: render around a placeholder and put the text in its place.
      rendered = this.render(`${MEDIA_MARKER}${USER_TEXT_PLACEHOLDER}`);
      at = rendered.indexOf(MEDIA_MARKER);
      found = rendered.indexOf(USER_TEXT_PLACEHOLDER);
      if (at < 0 || found < 0) throw new SrfError('INVALID_ARGUMENT', `the chat template from ${this.origin} does not keep the user's text`);
      text = userText;
      rendered = rendered.slice(0, found) + text + rendered.slice(found + USER_TEXT_PLACEHOLDER.length);
    }
    const after = rendered.slice(at + MEDIA_MARKER.length);
    const start = found - at - MEDIA_MARKER.length;
    const parts: PromptTextPart[] = [
      { text: after.slice(0, start), special: true },
      { text, special: false },
      { text: after.slice(start + text.length), special: true },
    ].filter((p) => p.text !== '');
    return { beforeImage: rendered.slice(0, at), afterImage: parts };
  }

  /**
   * The text the template writes right after an assistant's reply (chatml's "<|im_end|>\n", Gemma's
   * "<end_of_turn>\n"): what the model emits when it ends a reply. Undefined when it cannot tell.
   */
  textAfterReply(): string | undefined {
    const reply = 'SRF_REPLY_MARKER';
    const content = (text: string) => (this.#typedContent ? [{ type: 'text', text }] : text);
    try {
      const text = this.#template.render({
        messages: [
          { role: 'user', content: content('Hi') },
          { role: 'assistant', content: content(reply) },
        ],
        add_generation_prompt: false,
        bos_token: this.#tokens.bos,
        eos_token: this.#tokens.eos,
      });
      const at = text.lastIndexOf(reply);
      return at < 0 ? undefined : text.slice(at + reply.length);
    } catch {
      return undefined;
    }
  }

  /** Whether the template writes a string content as it is (llama.cpp's caps check, common/jinja/caps.cpp). */
  #takesStringContent(): boolean {
    const probe = 'STRING_MARKER';
    try {
      return this.#template
        .render({ messages: [{ role: 'user', content: probe }], add_generation_prompt: true, bos_token: this.#tokens.bos, eos_token: this.#tokens.eos })
        .includes(probe);
    } catch {
      return false;
    }
  }
}
