/** The content width of an element, following resizes (charts size themselves from it). */
import type { RefObject } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export const useWidth = (ref: RefObject<HTMLElement | null>): number => {
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(Math.floor(el.clientWidth)));
    ro.observe(el);
    setWidth(Math.floor(el.clientWidth));
    return () => ro.disconnect();
  }, [ref]);
  return width;
};
