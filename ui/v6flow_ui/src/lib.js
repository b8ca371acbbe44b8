// The one place the vendored libraries are imported: Preact, its hooks and htm (no build step).
import { h, render, Fragment, createContext } from "../vendor/preact.js";
import {
  useCallback, useContext, useEffect, useId, useMemo, useReducer, useRef, useState,
} from "../vendor/hooks.js";
import htm from "../vendor/htm.js";

/** Tagged templates instead of JSX: html`<p class="x">${text}</p>`. */
export const html = htm.bind(h);

export {
  h, render, Fragment, createContext,
  useCallback, useContext, useEffect, useId, useMemo, useReducer, useRef, useState,
};
