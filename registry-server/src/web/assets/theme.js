// Applies the theme chosen with the toggle before the page is drawn (no flash of the other one).
try {
  const theme = localStorage.getItem('theme');
  if (theme === 'dark' || theme === 'light') document.documentElement.dataset.theme = theme;
} catch (_) { /* storage disabled: follow the system setting */ }
