// The web UI's behaviour: the theme toggle, copy buttons, and search suggestions as one types.
// Every page works without it; this only adds to what the HTML already does.
(() => {
  'use strict';
  const root = document.documentElement;
  const announce = (text) => {
    const region = document.getElementById('announce');
    if (region) region.textContent = text;
  };

  // Theme: the system setting unless the toggle chose one (kept in localStorage by theme.js).
  const toggle = document.getElementById('theme-toggle');
  const systemDark = window.matchMedia('(prefers-color-scheme: dark)');
  const isDark = () => (root.dataset.theme ? root.dataset.theme === 'dark' : systemDark.matches);
  const syncToggle = () => toggle && toggle.setAttribute('aria-pressed', String(isDark()));
  if (toggle) {
    toggle.hidden = false;
    syncToggle();
    toggle.addEventListener('click', () => {
      const next = isDark() ? 'light' : 'dark';
      root.dataset.theme = next;
      try { localStorage.setItem('theme', next); } catch (_) { /* not kept: fine */ }
      syncToggle();
      announce(next === 'dark' ? 'Dark theme' : 'Light theme');
    });
    systemDark.addEventListener('change', syncToggle);
  }

  // Copy buttons: the clipboard API where the page is a secure context, else a selection.
  const copyText = async (text) => {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'offscreen';
    document.body.appendChild(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  };
  document.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-copy]');
    if (!button) return;
    try {
      await copyText(button.dataset.copy);
      button.textContent = 'Copied';
      announce('Copied: ' + button.dataset.copy);
    } catch (_) {
      button.textContent = 'Select and copy';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  });

  // Search suggestions: a combobox over the same search as the results page.
  const input = document.getElementById('q');
  const list = document.getElementById('suggestions');
  if (!input || !list) return;
  let timer = 0;
  let asked = 0;
  let active = -1;
  const options = () => Array.from(list.querySelectorAll('[role="option"]'));
  const close = () => {
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  };
  const highlight = (index) => {
    const all = options();
    all.forEach((o, i) => o.setAttribute('aria-selected', String(i === index)));
    active = index;
    if (index >= 0 && all[index]) {
      input.setAttribute('aria-activedescendant', all[index].id);
      all[index].scrollIntoView({ block: 'nearest' });
    } else {
      input.removeAttribute('aria-activedescendant');
    }
  };
  const show = (results) => {
    list.replaceChildren();
    results.forEach((r, i) => {
      const li = document.createElement('li');
      li.id = 'suggestion-' + i;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', 'false');
      const link = document.createElement('a');
      link.href = r.url;
      link.tabIndex = -1;
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = r.name;
      link.appendChild(name);
      if (r.version) {
        const version = document.createElement('span');
        version.className = 'version';
        version.textContent = 'v' + r.version;
        link.appendChild(version);
      }
      if (r.description) {
        const description = document.createElement('span');
        description.className = 'description';
        description.textContent = r.description;
        link.appendChild(description);
      }
      li.appendChild(link);
      list.appendChild(li);
    });
    const any = results.length > 0;
    list.hidden = !any;
    input.setAttribute('aria-expanded', String(any));
    active = -1;
    announce(any ? results.length + ' matching packages' : 'No matching package');
  };
  const suggest = async () => {
    const text = input.value.trim();
    if (!text) { close(); return; }
    const mine = ++asked;
    try {
      const res = await fetch(input.dataset.suggest + '?q=' + encodeURIComponent(text), {
        credentials: 'same-origin',
        headers: { accept: 'application/json' },
      });
      if (!res.ok || mine !== asked) return;
      const body = await res.json();
      if (mine === asked) show(body.results || []);
    } catch (_) { /* offline or server gone: the form still submits */ }
  };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 120);
  });
  input.addEventListener('keydown', (event) => {
    const all = options();
    if (event.key === 'ArrowDown' && all.length) {
      event.preventDefault();
      highlight((active + 1) % all.length);
    } else if (event.key === 'ArrowUp' && all.length) {
      event.preventDefault();
      highlight(active <= 0 ? all.length - 1 : active - 1);
    } else if (event.key === 'Enter' && active >= 0 && all[active]) {
      event.preventDefault();
      window.location.href = all[active].querySelector('a').href;
    } else if (event.key === 'Escape') {
      close();
    }
  });
  document.addEventListener('click', (event) => {
    if (!event.target.closest('.search')) close();
  });
})();
