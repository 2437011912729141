/** Asks once for the job's token (`--ui-token` / EDDY_UI_TOKEN) when the server answers 401. */
import { useEffect, useRef, useState } from 'preact/hooks';

export const TokenPrompt = ({
  wrong,
  onToken,
}: {
  wrong: boolean;
  onToken: (t: string) => void;
}) => {
  const [value, setValue] = useState('');
  const input = useRef<HTMLInputElement>(null);
  // Focused for typing right away (a modal with one field).
  useEffect(() => input.current?.focus(), []);
  return (
    <div class="overlay">
      <form
        class="dialog small"
        data-testid="token-prompt"
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) onToken(value.trim());
        }}
      >
        <header class="dialog-head">
          <h2>Token required</h2>
        </header>
        <div class="dialog-body">
          <p>
            {wrong ? 'That token was refused. ' : ''}This job was started with a token (
            <code>--ui-token</code> or <code>EDDY_UI_TOKEN</code>). Enter it to continue; it is kept
            for this browser tab only.
          </p>
          <input
            type="password"
            class="wide"
            autocomplete="off"
            ref={input}
            placeholder="token"
            value={value}
            data-testid="token-input"
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
          />
        </div>
        <footer class="dialog-foot">
          <button type="submit" class="primary" disabled={!value.trim()}>
            Continue
          </button>
        </footer>
      </form>
    </div>
  );
};
