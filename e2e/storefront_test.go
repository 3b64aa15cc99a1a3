package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestStorefront drives the storefront the gateway serves at / in headless
// Chromium, as a customer on a phone-sized screen (sign up, browse with
// paging, a product's page, the cart, an order placed with the keyboard
// alone and watched from placed to confirmed and its shipment without a
// reload, an order cancelled for want of stock and one whose payment is
// declined, each with its reason, the history, the notifications, logging
// out) and as an admin (a product named like markup shown as those
// characters, stock set). Tab must reach every control of the catalog, a
// product's page and the cart. Any JavaScript exception, console error, CSP
// violation or dialog fails it; after every step no control lacks a label,
// nothing overflows the screen sideways and nothing is in the browser's
// storage. A screenshot of every step goes to the results folder (see
// shotsDir). It runs on every profile's pass.
func TestStorefront(t *testing.T) {
	chrome := chromiumPath()
	if chrome == "" {
		if os.Getenv("E2E_REQUIRED") != "" {
			t.Fatal("no Chromium (E2E_CHROMIUM, or chromium or google-chrome on PATH): run `make tools`, which installs it or says how")
		}
		t.Skip("no Chromium: set E2E_CHROMIUM, or put chromium or google-chrome on PATH")
	}
	dir := shotsDir(t)
	admin := adminToken(t)

	// Enough products for a second catalog page (12 a page), then the two
	// this test buys, newest first: on the first page.
	var list struct{ Total int }
	gateway(t, "").mustCall(t, "GET", "/api/products?limit=1", nil, 200, &list)
	for i := list.Total; i < 13; i++ {
		newProduct(t, admin, 100, 1)
	}
	scarce := newProduct(t, admin, 500, 1)
	p := newProduct(t, admin, 1250, 5)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.WindowSize(1280, 900),
		// A test browser on loopback pages: containers seldom allow its sandbox.
		chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()

	t.Run("customer", func(t *testing.T) {
		b := openBrowser(t, alloc, dir, "customer")
		b.do("open the catalog on a phone-sized screen", chromedp.EmulateViewport(390, 844),
			chromedp.Navigate(env.gatewayURL()+"/#/products"))
		b.wait("the catalog", `document.querySelector('#view-title')?.textContent === 'Products' && document.querySelector('.card') !== null`)
		b.eval(`window.__sameDocument = true`)

		// Keyboard: the first Tab stop is the skip link, which moves to the content.
		b.do("tab to the skip link", chromedp.KeyEvent("\t"))
		b.wait("the skip link focused", `document.activeElement?.className === 'skip'`)
		b.do("follow it", chromedp.KeyEvent("\r"))
		b.wait("the content focused", `document.activeElement?.id === 'main'`)
		b.step("catalog")

		b.do("next page", chromedp.Click(chromedp.CSS(`.pager a[href="#/products?offset=12"]`)))
		b.wait("the second page", `document.querySelector('.pager span')?.textContent.startsWith('13–')`)
		b.step("catalog-page-2")
		b.do("previous page", chromedp.Click(chromedp.CSS(`.pager a[href="#/products?offset=0"]`)))
		b.wait("the first page again", fmt.Sprintf(`document.querySelector('a[href="#/products/%s"]') !== null`, p.ID))

		// An error of the API is shown as the error model's message.
		email, pw := "e2e-nobody-"+randomHex(4)+"@example.com", "wrong password 1"
		_, reply := gateway(t, "").call(t, "POST", "/api/login", map[string]string{"email": email, "password": pw})
		var apiErr struct{ Error struct{ Message string } }
		if json.Unmarshal(reply, &apiErr) != nil || apiErr.Error.Message == "" {
			t.Fatalf("login with an unknown email: %s", reply)
		}
		b.do("a failed login", chromedp.Click(chromedp.CSS(`.signed-out a[href="#/login"]`)),
			chromedp.SendKeys(chromedp.CSS("#login-email"), email), chromedp.SendKeys(chromedp.CSS("#login-password"), pw+"\r"))
		b.wait("the API's message", fmt.Sprintf(`document.querySelector('#login-form .error')?.textContent === %s`, jsString(apiErr.Error.Message)))
		b.step("login-error")

		name, signUpEmail := "Ada <b>Lovelace</b>", "e2e-shop-"+randomHex(6)+"@example.com"
		b.do("sign up", chromedp.Click(chromedp.CSS(`.signed-out a[href="#/signup"]`)),
			chromedp.SendKeys(chromedp.CSS("#signup-name"), name), chromedp.SendKeys(chromedp.CSS("#signup-email"), signUpEmail),
			chromedp.SendKeys(chromedp.CSS("#signup-password"), password+"\r"))
		b.wait("signed in", fmt.Sprintf(`document.querySelector('#whoami').textContent === %s && location.hash === '#/products'`, jsString(name)))
		b.step("signed-up")
		b.tabReachesEverything("the catalog, signed in")

		b.do("open a product", chromedp.Click(chromedp.CSS(fmt.Sprintf(`.card a[href="#/products/%s"]`, p.ID))))
		b.wait("its page with its stock", fmt.Sprintf(`document.querySelector('#view-title')?.textContent === %s && document.querySelector('#product-stock-level')?.textContent === '5 in stock'`, jsString(p.Name)))
		b.step("product")
		b.tabReachesEverything("a product's page")
		b.do("two into the cart", chromedp.SetValue(chromedp.CSS("#add-quantity"), "2"), chromedp.SendKeys(chromedp.CSS("#add-quantity"), "\r"))
		b.wait("the cart", `location.hash === '#/cart' && document.querySelector('#nav-cart').textContent === 'Cart (2)'`)
		b.step("cart")

		// The keyboard alone: Tab reaches every control of the page, and
		// the order is placed with Tab and Enter.
		b.tabReachesEverything("the cart")
		b.tabTo("the Place order button", `document.activeElement?.textContent === 'Place order'`)
		b.do("place the order with Enter", chromedp.KeyEvent("\r"))
		b.wait("the order's page", `/^#\/orders\/ord_[0-9a-f]{24}$/.test(location.hash)`)
		orderID := strings.TrimPrefix(b.eval(`location.hash`), "#/orders/")
		b.step("placed")
		b.wait("confirmed, without a reload", `document.querySelector('#order-status')?.textContent === 'Confirmed.' && window.__sameDocument === true`)
		b.step("confirmed")
		b.wait("its shipment", `document.querySelector('#shipment-status')?.textContent.startsWith('Shipment: ')`)
		b.step("shipment")

		// An order products cannot fill is cancelled, and says why.
		b.addOneToCart(scarce)
		gateway(t, admin).mustCall(t, "PUT", "/api/products/"+scarce.ID+"/stock", map[string]int{"stock": 0}, 200, nil)
		b.orderTheCart()
		// Cancelled before it was priced: no total to show, and no bare 0.
		b.wait("cancelled with the reason", `document.querySelector('#order-status')?.textContent.startsWith('Cancelled: out of stock') && [...document.querySelectorAll('dt')].find(d => d.textContent === 'Total')?.nextElementSibling?.textContent === '—'`)
		b.step("cancelled")

		// A payment the provider declines cancels the order, and says so.
		declinePayments(t, 1)
		b.addOneToCart(p)
		b.orderTheCart()
		b.wait("cancelled: payment declined", `document.querySelector('#order-status')?.textContent === 'Cancelled: payment declined'`)
		b.step("declined")

		b.do("the order history", chromedp.Click(chromedp.CSS(`.nav a[href="#/orders"]`)))
		b.wait("the order, confirmed", fmt.Sprintf(`[...document.querySelectorAll('.orders li')].some(li => li.textContent.includes(%s) && li.querySelector('.badge')?.textContent === 'confirmed')`, jsString(orderID)))
		b.step("orders")

		b.do("the notifications", chromedp.Click(chromedp.CSS(`.nav a[href="#/notifications"]`)))
		notes := fmt.Sprintf(`document.querySelectorAll('.notes a[href="#/orders/%s"]').length >= 4`, orderID)
		// The confirmation's notifications may trail it: the page's Refresh
		// button, at most once a second, until they are there.
		var refreshed time.Time
		eventually(t, 30*time.Second, func() string {
			if ok, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](notes)); ok {
				return ""
			}
			if time.Since(refreshed) > time.Second {
				refreshed = time.Now()
				_ = chromedp.Do(b.ctx, chromedp.Click(chromedp.Search(`//button[normalize-space()="Refresh"]`)))
			}
			return "fewer than 4 notifications of the order on the page"
		})
		b.step("notifications")

		b.do("log out", chromedp.Click(chromedp.CSS("#logout")))
		b.wait("signed out", `document.querySelector('#whoami').textContent === '' && !document.querySelector('.signed-out').hidden`)
		b.eval(`location.hash = '#/orders'`)
		b.wait("asked to log in", `document.querySelector('#view-dynamic a[href="#/login"]') !== null`)
		b.step("signed-out")
	})

	t.Run("admin", func(t *testing.T) {
		b := openBrowser(t, alloc, dir, "admin")
		b.do("log in", chromedp.Navigate(env.gatewayURL()+"/#/login"),
			chromedp.SendKeys(chromedp.CSS("#login-email"), adminEmail),
			chromedp.SendKeys(chromedp.CSS("#login-password"), env.secrets["admin-password"]+"\r"))
		b.wait("the admin's menu", `!document.querySelector('.admin-only').hidden`)
		b.do("the admin page", chromedp.Click(chromedp.CSS(`.nav a[href="#/admin"]`)))
		b.wait("the admin page", `!document.querySelector('#view-admin').hidden`)

		name := "<img src=x onerror=alert(1)> " + randomHex(3)
		// A description with a word far wider than a phone: it must wrap.
		description := "<script>alert(2)</script> " + strings.Repeat("W", 300)
		b.do("add a product named like markup", chromedp.SendKeys(chromedp.CSS("#product-name"), name),
			chromedp.SetValue(chromedp.CSS("#product-description"), description),
			chromedp.SetValue(chromedp.CSS("#product-stock"), "3"),
			chromedp.SendKeys(chromedp.CSS("#product-price"), "9.99\r"))
		b.wait("added", fmt.Sprintf(`document.querySelector('#product-form .ok')?.textContent.includes(%s)`, jsString(name)))
		id := b.eval(`document.querySelector('#stock-product').value`)
		if !regexp.MustCompile(`^prd_[0-9a-f]{24}$`).MatchString(id) {
			t.Fatalf("the new product is not chosen for its stock: %q", id)
		}
		b.step("product-added")

		noMarkup := `document.querySelectorAll('main img, main script, body > img').length === 0`
		b.do("its page on a phone-sized screen", chromedp.EmulateViewport(390, 844))
		b.eval(fmt.Sprintf(`location.hash = '#/products/%s'`, id))
		b.wait("its name as text", fmt.Sprintf(`document.querySelector('#view-title')?.textContent === %s && document.querySelector('.description')?.textContent === %s && %s`, jsString(name), jsString(description), noMarkup))
		b.step("markup-as-text")
		b.do("the catalog", chromedp.Click(chromedp.CSS(`.nav a[href="#/products"]`)))
		b.wait("its name as text in the catalog", fmt.Sprintf(`[...document.querySelectorAll('.card h2 a')].some(a => a.textContent === %s) && %s`, jsString(name), noMarkup))
		b.step("catalog")

		b.do("set its stock", chromedp.Click(chromedp.CSS(`.nav a[href="#/admin"]`)))
		b.wait("the product among the choices", fmt.Sprintf(`document.querySelector('#stock-product option[value="%s"]') !== null`, id))
		b.do("to 7", chromedp.SetValue(chromedp.CSS("#stock-product"), id), chromedp.SendKeys(chromedp.CSS("#stock-value"), "7\r"))
		b.wait("set", `document.querySelector('#stock-form .ok')?.textContent.endsWith('is now 7.')`)
		if got := stockOf(t, id); got != 7 {
			t.Fatalf("stock %d after the admin set it to 7", got)
		}
		b.step("stock-set")
	})
}

// browser is a tab of the test's Chromium that records what went wrong in
// its page.
type browser struct {
	t        *testing.T
	ctx      context.Context
	dir, who string
	steps    int
	mu       sync.Mutex
	problems []string
}

func openBrowser(t *testing.T, alloc context.Context, dir, who string) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx, dir: dir, who: who}
	// The tab first, so that the subscriptions see all its page does.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The API's own 4xx (a shipment not made yet) are the browser's
			// network errors; everything else is the page's.
			if (m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException) && m.Source != "network" {
				b.problem("%s %s:%d", m, m.URL, m.Line)
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.problem("a %s dialog opened: %q", ev.Type, ev.Message)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return b
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// fail saves a screenshot of the page as it is and fails the test.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	b.shot("failed")
	b.mu.Lock()
	problems := strings.Join(b.problems, "\n  ")
	b.mu.Unlock()
	b.t.Fatalf("%s: %s\npage problems:\n  %s", b.who, fmt.Sprintf(format, args...), problems)
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// eval runs a script in the page and returns its value as a string.
func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.fail("%s: %v", js, err)
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// wait waits, up to 30 seconds, for the page to make cond true.
func (b *browser) wait(what, cond string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		b.fail("waiting for %s (%s): %v", what, cond, err)
	}
}

// addOneToCart opens the catalog and adds one unit of p from its card.
func (b *browser) addOneToCart(p product) {
	b.t.Helper()
	b.do("the catalog", chromedp.Click(chromedp.CSS(`.nav a[href="#/products"]`)))
	b.wait("the catalog", fmt.Sprintf(`document.querySelector('.card a[href="#/products/%s"]') !== null`, p.ID))
	b.do("add "+p.Name, chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[aria-label=%s]`, jsString("Add "+p.Name+" to cart")))))
	b.wait("in the cart", `document.querySelector('#nav-cart').textContent === 'Cart (1)'`)
}

// orderTheCart opens the cart and places its order.
func (b *browser) orderTheCart() {
	b.t.Helper()
	b.do("order the cart", chromedp.Click(chromedp.CSS(`#nav-cart`)), chromedp.Click(chromedp.Search(`//button[normalize-space()="Place order"]`)))
}

// tabReachesEverything presses Tab, from the page's first control, as many
// times as the page has controls, and fails unless every visible link,
// button and field was focused on the way: a control the keyboard cannot
// reach (a negative tabindex, a positive one out of order) fails it.
func (b *browser) tabReachesEverything(where string) {
	b.t.Helper()
	n, err := strconv.Atoi(b.eval(`(() => {
		window.__controls = [...document.querySelectorAll('a[href], button, input, select, textarea')]
			.filter(e => !e.disabled && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden');
		window.__reached = new Set();
		window.__onFocus = (ev) => window.__reached.add(ev.target);
		document.addEventListener('focusin', window.__onFocus, true);
		// Chromium goes on from the last element focused or clicked: start
		// at the first control (the skip link), as a page just opened does.
		window.__controls[0]?.focus();
		return String(window.__controls.length);
	})()`))
	if err != nil || n == 0 {
		b.fail("%s: no controls to reach (%v)", where, err)
	}
	for range n {
		b.do("Tab", chromedp.KeyEvent("\t"))
	}
	missing := b.eval(`(() => {
		document.removeEventListener('focusin', window.__onFocus, true);
		return window.__controls.filter(e => !window.__reached.has(e))
			.map(e => e.id || e.getAttribute('aria-label') || e.textContent.trim() || e.tagName).join(' | ');
	})()`)
	if missing != "" {
		b.fail("%s: Tab never reaches %s", where, missing)
	}
}

// tabTo presses Tab until cond holds of the focused element, at most 100
// times.
func (b *browser) tabTo(what, cond string) {
	b.t.Helper()
	for range 100 {
		if b.eval(fmt.Sprintf(`String(%s)`, cond)) == "true" {
			return
		}
		b.do("Tab", chromedp.KeyEvent("\t"))
	}
	b.fail("Tab never reached %s", what)
}

// step checks the page after a step of the journey and saves its screenshot.
func (b *browser) step(name string) {
	b.t.Helper()
	b.shot(name)
	b.mu.Lock()
	problems := len(b.problems)
	b.mu.Unlock()
	if problems > 0 {
		b.fail("after %s", name)
	}
	var c struct {
		Unlabelled []string `json:"unlabelled"`
		Overflow   int      `json:"overflow"`
		Stored     int      `json:"stored"`
		URL        string   `json:"url"`
	}
	raw := b.eval(`JSON.stringify({
		unlabelled: [...document.querySelectorAll('input, select, textarea')]
			.filter(e => e.type !== 'hidden' && e.getClientRects().length > 0 && e.labels.length === 0 && !e.getAttribute('aria-label'))
			.map(e => e.id || e.name || e.tagName),
		overflow: document.documentElement.scrollWidth - window.innerWidth,
		stored: localStorage.length + sessionStorage.length + document.cookie.length,
		url: location.href,
	})`)
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		b.fail("after %s: %v", name, err)
	}
	switch {
	case len(c.Unlabelled) > 0:
		b.fail("after %s: controls without a label: %v", name, c.Unlabelled)
	case c.Overflow > 0:
		b.fail("after %s: the page is %d px wider than the screen", name, c.Overflow)
	case c.Stored > 0:
		b.fail("after %s: something is in localStorage, sessionStorage or a cookie", name)
	case !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/(#/[a-z]+(/[a-z]{3}_[0-9a-f]{24}|\?offset=\d+)?)?$`).MatchString(c.URL):
		b.fail("after %s: the URL %q holds more than a view", name, c.URL)
	}
}

func (b *browser) shot(name string) {
	b.steps++
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.dir, fmt.Sprintf("%s-%02d-%s.png", b.who, b.steps, name)), png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// chromiumPath is the browser to drive: E2E_CHROMIUM, else the first of the
// usual names on PATH; "" when there is none.
func chromiumPath() string {
	if p := os.Getenv("E2E_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// shotsDir is where the screenshots go, emptied first so that it holds
// this run's only: storefront-<profile> in $E2E_RESULTS, else in e2e/results
// (kept after the run, ignored by git).
func shotsDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("E2E_RESULTS")
	if base == "" {
		base = "results"
	}
	dir, err := filepath.Abs(filepath.Join(base, "storefront-"+env.profile))
	if err == nil {
		err = os.RemoveAll(dir)
	}
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of every step in %s", dir)
	return dir
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
