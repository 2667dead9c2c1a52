// Ask before a destructive form is sent (forms carrying data-confirm); the server checks CSRF.
document.addEventListener("submit", (event) => {
  const text = event.target.dataset && event.target.dataset.confirm;
  if (text && !window.confirm(text)) event.preventDefault();
});
