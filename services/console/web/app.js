// The console's page shell: asks /api/me who is logged in and says so.
// The pages of issue 15 build on this module (docs/console.md).

const status = document.getElementById('status');

async function whoami() {
  const answer = await fetch('/api/me', { credentials: 'same-origin' });
  if (answer.status === 401) {
    status.textContent = '로그인이 필요합니다 (please log in)';
    return;
  }
  if (!answer.ok) {
    status.textContent = `콘솔 오류 (console error): ${answer.status}`;
    return;
  }
  const me = await answer.json();
  status.textContent = `${me.name} (${me.role})`;
}

whoami().catch((error) => {
  status.textContent = `콘솔에 연결할 수 없습니다 (cannot reach the console): ${error.message}`;
});
